"""Vectorised building blocks whose floating-point results are bit-identical to River's loops.

Non-associative recurrences run through ``itertools.accumulate`` in River's operation order.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from itertools import accumulate

import numpy as np
from numpy.typing import NDArray

from ._base import FloatArray, IntArray

__all__ = ["fading_sums", "latest_best", "ln", "running_mean"]


def _mean_step(mean: float, wx: tuple[float, float]) -> float:
    w, x = wx
    return mean + w * (x - mean)


def running_mean(mean0: float, n0: int, xs: FloatArray) -> FloatArray:
    """Means after each element of ``xs`` by River's ``Mean``: ``n += 1; m += (1/n) * (x - m)``.

    ``mean0``/``n0`` describe the mean before ``xs``. The result is exact (same rounding as the
    scalar recurrence), which a closed form such as ``cumsum / n`` would not be.
    """
    k = xs.shape[0]
    weights = (1.0 / np.arange(n0 + 1, n0 + k + 1, dtype=np.float64)).tolist()
    steps = accumulate(zip(weights, xs.tolist(), strict=True), _mean_step, initial=mean0)
    return np.fromiter(steps, dtype=np.float64, count=k + 1)[1:]


def fading_sums(
    start: float, devs: FloatArray, alpha: float, delta: float, minus: bool
) -> FloatArray:
    """Values of ``s = alpha * s + dev - delta`` (``minus``) or ``... + delta`` after each dev.

    This is Page-Hinkley's recurrence, evaluated left to right as River does.
    ``scipy.signal.lfilter`` computes the same filter with another operation order
    (``dev - delta`` first), so its last bits, and sometimes a detection index, differ.
    """

    def down(s: float, dev: float) -> float:
        return alpha * s + dev - delta

    def up(s: float, dev: float) -> float:
        return alpha * s + dev + delta

    step: Callable[[float, float], float] = down if minus else up
    out = accumulate(devs.tolist(), step, initial=start)
    return np.fromiter(out, dtype=np.float64, count=devs.shape[0] + 1)[1:]


def latest_best(
    values: FloatArray, best0: float, active: NDArray[np.bool_] | None, lower: bool
) -> IntArray:
    """Track River's "keep the running minimum (maximum), ties replace" pattern.

    For each position ``k`` return the index ``j <= k`` of the latest active value that was
    ``<=`` (``lower``) or ``>=`` the best of all earlier active values and of ``best0``; ``-1``
    when no value has replaced ``best0`` yet. ``active`` masks positions that take part.
    """
    k = values.shape[0]
    fill = math.inf if lower else -math.inf
    v = values if active is None else np.where(active, values, fill)
    acc = np.minimum if lower else np.maximum
    prev = acc.accumulate(np.concatenate(([best0], v)))[:-1]
    new = v <= prev if lower else v >= prev
    if active is not None:
        new &= active
    idx = np.where(new, np.arange(k, dtype=np.int64), -1)
    return np.maximum.accumulate(idx) if k else idx


def ln(v: float) -> float:
    """Natural log following IEEE (``ln(0) = -inf``, NaN below zero) like Rust's ``f64::ln``."""
    if v > 0.0:
        return math.log(v)
    return -math.inf if v == 0.0 else math.nan
