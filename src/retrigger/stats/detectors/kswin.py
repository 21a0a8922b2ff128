"""KSWIN, Kolmogorov-Smirnov windowing (Raab et al., 2020), for changes of a distribution.

Equivalent to ``river.drift.KSWIN`` given the same seed (same sampling, same drift indices).
"""

from __future__ import annotations

import random
import secrets
import warnings
from typing import Any, Self

import numpy as np
from pydantic import Field, model_validator
from scipy import stats as sps

from ._base import (
    DetectorParams,
    DetectorStats,
    DriftDetector,
    FloatArray,
    IntArray,
    invalid_state,
)

__all__ = ["KSWIN", "KSWINParams"]

# p-value of the two-sided exact KS test by (sample size, integer statistic); see ``_p_value``.
_P_VALUES: dict[tuple[int, int], float] = {}


class KSWINParams(DetectorParams):
    """Parameters of :class:`KSWIN` (River's defaults)."""

    alpha: float = Field(0.005, gt=0, lt=1, description="significance level of the KS test")
    window_size: int = Field(100, ge=2, le=1_000_000, description="sliding window length")
    stat_size: int = Field(30, ge=1, le=10_000, description="size of both compared samples")
    seed: int | None = Field(None, description="seed of the sampling RNG (None: OS entropy)")

    @model_validator(mode="after")
    def _sizes(self) -> Self:
        if self.window_size < 2 * self.stat_size:
            raise ValueError("window_size must be at least twice stat_size")
        return self


class RNGState(DetectorStats):
    """``random.Random.getstate()`` as JSON: Mersenne Twister words and cached gaussian."""

    version: int
    internal: list[int] = Field(min_length=625, max_length=625)
    gauss_next: float | None


class KSWINStats(DetectorStats):
    """JSON state of :class:`KSWIN`: the window (oldest first), last p-value and the RNG."""

    n: int = Field(ge=0)
    window: list[float]
    p_value: float = Field(ge=0, le=1)
    rng: RNGState
    auto_seed: int | None = Field(None, ge=0, description="entropy seed used when seed is None")


def ks_statistics(a: FloatArray, b: FloatArray) -> IntArray:
    """Integer two-sample KS statistics ``max |#(a <= v) - #(b <= v)|`` row by row.

    ``a`` and ``b`` have the same shape ``(rows, size)``; the statistic is ``result / size``.
    The sup is taken at the last element of each run of equal values, as SciPy's
    ``searchsorted(..., side="right")`` does, so ties are handled identically.
    """
    both = np.concatenate((a, b), axis=1)
    order = np.argsort(both, axis=1, kind="stable")
    values = np.take_along_axis(both, order, axis=1)
    steps = np.where(order < a.shape[1], 1, -1)
    walk = np.cumsum(steps, axis=1)
    run_end = np.ones(values.shape, dtype=bool)
    run_end[:, :-1] = values[:, 1:] != values[:, :-1]
    result: IntArray = np.abs(np.where(run_end, walk, 0)).max(axis=1).astype(np.int64)
    return result


def _p_value(size: int, h: int, a: FloatArray, b: FloatArray) -> float:
    """SciPy's ``ks_2samp(a, b, method="auto")`` p-value, which depends on ``(size, h)`` only.

    With equal sample sizes (at most 10000) SciPy computes the exact p-value from the integer
    statistic ``h``; it is cached per ``(size, h)`` after one genuine SciPy call.
    """
    key = (size, h)
    if key not in _P_VALUES:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", category=RuntimeWarning)
            res: Any = sps.ks_2samp(a, b, method="auto")
        if float(res.statistic) != h * 1.0 / size:
            raise AssertionError("KS statistic disagrees with SciPy")  # pragma: no cover
        _P_VALUES[key] = float(res.pvalue)
    return _P_VALUES[key]


class KSWIN(DriftDetector[KSWINParams, KSWINStats]):
    r"""Kolmogorov-Smirnov Windowing (KSWIN) drift detector on a real-valued stream.

    KSWIN keeps the last ``window_size`` observations. Once the window is full, every update
    compares the ``stat_size`` most recent observations with ``stat_size`` observations drawn
    without replacement from the older part of the window, by a two-sample Kolmogorov-Smirnov
    test (SciPy's ``ks_2samp``, ``method="auto"``). A drift is signalled when the p-value is at
    most ``alpha`` *and* the statistic exceeds 0.1; then the window is emptied.

    **Sampling.** Like River, the draw is ``random.Random(seed).sample(range(window_size -
    stat_size), stat_size)`` (positions in the window, oldest first), one draw per test, and the
    generator is re-seeded with ``seed`` at every reset; so the same seed gives River's indices.
    The generator's full state is part of ``to_state``, so a restored detector continues the
    same random stream. With ``seed=None`` a seed is drawn from OS entropy once, when the
    detector is created, and kept in the state; resets re-seed with it (River draws new entropy
    at each reset: equally unpredictable, but a replica could then not replay the stream).

    Real-valued input; NaN and infinities raise ``InvalidSample``.

    Parameters
    ----------
    alpha : float, default 0.005
        Significance level of the KS test, in (0, 1).
    window_size : int, default 100
        Length of the sliding window (at least ``2 * stat_size``).
    stat_size : int, default 30
        Size of the recent sample and of the random sample from the older part.
    seed : int or None, default None
        Seed of the sampling generator.

    References
    ----------
    .. [1] C. Raab, M. Heusinger, F.-M. Schleif. "Reactive Soft Prototype Computing for Concept
       Drift Streams". Neurocomputing 416, 2020, pp. 340-351.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> stream = np.concatenate([rng.normal(0.0, 1.0, 500), rng.normal(1.5, 1.0, 500)])
    >>> KSWIN(seed=42).update_many(stream).drifts
    [508]
    """

    key = "kswin"
    params_model = KSWINParams
    stats_model = KSWINStats
    _first_block = 128
    _max_block = 4096
    _auto_seed: int | None = None

    def _reset_stats(self) -> None:
        seed = self.params.seed
        if seed is None:
            if self._auto_seed is None:
                self._auto_seed = secrets.randbits(63)
            seed = self._auto_seed
        self._n = 0
        self._window: list[float] = []
        self._rng = random.Random(seed)
        self._p_value = 0.0

    @property
    def p_value(self) -> float:
        """p-value of the last KS test (0.0 before the first one)."""
        return self._p_value

    def _draw(self) -> list[int]:
        prm = self.params
        return self._rng.sample(range(prm.window_size - prm.stat_size), prm.stat_size)

    def _step(self, x: float) -> None:
        self._run_block(np.array([x], dtype=np.float64))

    def _tests(self, buf: FloatArray, held: int, first: int) -> tuple[FloatArray, IntArray]:
        """p-values of the tests at offsets ``first..`` of the new data and where drift fires.

        ``buf`` is the held window followed by the new observations; the test at offset ``j``
        sees the ``window_size`` observations ending at ``buf[held + j]``.
        """
        w, s = self.params.window_size, self.params.stat_size
        starts = np.arange(first, buf.shape[0] - held, dtype=np.int64) + held + 1 - w
        draws = np.array([self._draw() for _ in range(starts.shape[0])], dtype=np.int64)
        a = buf[starts[:, None] + draws]
        b = buf[starts[:, None] + (w - s) + np.arange(s)]
        h = ks_statistics(a, b)
        p = np.array([_p_value(s, int(v), a[i], b[i]) for i, v in enumerate(h.tolist())])
        return p, np.flatnonzero((p <= self.params.alpha) & (h * 1.0 / s > 0.1))

    def _run_block(self, xs: FloatArray) -> tuple[int | None, IntArray]:
        w = self.params.window_size
        k, held = xs.shape[0], len(self._window)
        if self._n == 0:
            self._p_value = 0.0  # River resets it when a new segment starts
        first = max(0, w - held - 1)  # first offset at which the window is full
        if first < k:
            buf = np.concatenate((np.asarray(self._window, dtype=np.float64), xs))
            p, fired = self._tests(buf, held, first)
            if fired.size:
                self._drift = True
                self._reset_stats()  # River empties the window and re-seeds the sampler
                self._p_value = float(p[fired[0]])
                return first + int(fired[0]), self._no_warnings()
            self._p_value = float(p[-1])
        self._n += k
        self._window = (self._window + xs.tolist())[-w:]
        return None, self._no_warnings()

    def _dump_stats(self) -> KSWINStats:
        version, internal, gauss = self._rng.getstate()
        return KSWINStats(
            n=self._n,
            window=list(self._window),
            p_value=self._p_value,
            rng=RNGState(version=version, internal=list(internal), gauss_next=gauss),
            auto_seed=self._auto_seed if self.params.seed is None else None,
        )

    def _load_stats(self, stats: KSWINStats) -> None:
        if len(stats.window) != min(stats.n, self.params.window_size):
            raise invalid_state("KSWIN window length must be min(n, window_size)")
        if (stats.auto_seed is None) == (self.params.seed is None):
            raise invalid_state("KSWIN auto_seed must be set exactly when seed is None")
        rng = random.Random()
        try:
            rng.setstate((stats.rng.version, tuple(stats.rng.internal), stats.rng.gauss_next))
        except (TypeError, ValueError, OverflowError) as exc:
            raise invalid_state(f"KSWIN random generator state: {exc}") from exc
        self._n, self._window, self._p_value, self._rng = (
            stats.n,
            list(stats.window),
            stats.p_value,
            rng,
        )
        self._auto_seed = stats.auto_seed
