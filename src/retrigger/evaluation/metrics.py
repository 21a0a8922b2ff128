"""Model-quality metrics computed from prediction/label pairs (and scores), pure numpy/scipy.

Labels and predictions are compared as *keys*: booleans, numbers and numeric strings become
floats (``True``, ``1``, ``1.0``, ``"1"`` and ``"true"`` are the same key), other strings stay
strings. ``None``, NaN, infinities and empty strings are missing: such rows are dropped.

Binary metrics (precision, recall, f1, auc, log_loss) are one-vs-rest for the **positive
class**: the key 1 (so 1, True, "1", "true") unless a ``positive`` label is given. Scores are
the predicted probability of that positive class. Every metric returns ``None`` when it is
undefined (no rows; one class only for AUC; no positive predictions for precision...).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
from scipy import stats

from retrigger.errors import InvalidSample
from retrigger.evaluation.inputs import OutcomeWindow
from retrigger.policies.rules import Metric

__all__ = [
    "BUILTIN_METRICS",
    "LOG_LOSS_EPS",
    "MetricValue",
    "accuracy",
    "auc",
    "compute",
    "f1",
    "log_loss",
    "mae",
    "precision",
    "recall",
    "rmse",
]

LOG_LOSS_EPS: Final = 1e-15
"""Scores are clipped to [eps, 1 - eps] so a confident mistake costs about 34.5, not infinity."""

Keys = npt.NDArray[Any]
Label = str | int | float | bool | None


def _key(item: object) -> float | str | None:
    if item is None:
        return None
    if isinstance(item, bool | np.bool_ | int | np.integer | float | np.floating):
        value = float(item)
        return value if math.isfinite(value) else None
    if isinstance(item, bytes):
        item = item.decode("utf-8", "replace")
    if not isinstance(item, str):
        raise InvalidSample(
            f"labels must be numbers, booleans or strings, not {type(item).__name__}"
        )
    text = item.strip()
    if not text:
        return None
    if text.lower() in ("true", "false"):
        return 1.0 if text.lower() == "true" else 0.0
    try:
        value = float(text)
    except ValueError:
        return text
    return value if math.isfinite(value) else text


def _keys(values: Any, what: str) -> Keys:
    """Comparable keys of a 1-D array: a float array (NaN = missing) or an object array."""
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise InvalidSample(f"{what}: expected a one-dimensional array, got shape {arr.shape}")
    if arr.dtype.kind in "biuf":
        out = arr.astype(np.float64)
        out[~np.isfinite(out)] = np.nan
        return out
    keys = [_key(item) for item in arr.tolist()]
    if all(isinstance(k, float) or k is None for k in keys):
        return np.array([np.nan if k is None else k for k in keys], dtype=np.float64)
    return np.array(keys, dtype=object)


def _missing(keys: Keys) -> npt.NDArray[np.bool_]:
    if keys.dtype.kind == "f":
        return np.isnan(keys)
    return np.array([k is None for k in keys.tolist()], dtype=bool)


def _pairs(first: Any, second: Any, names: tuple[str, str]) -> tuple[Keys, Keys]:
    """Keys of two aligned arrays, keeping only rows where both are present."""
    a, b = _keys(first, names[0]), _keys(second, names[1])
    if a.shape != b.shape:
        raise InvalidSample(f"{names[0]} and {names[1]} differ in length ({a.size} != {b.size})")
    keep = ~(_missing(a) | _missing(b))
    return a[keep], b[keep]


def _positive(keys: Keys, positive: Label) -> npt.NDArray[np.bool_]:
    target = 1.0 if positive is None else _key(positive)
    if keys.dtype.kind == "f":
        return (
            np.asarray(keys == target) if isinstance(target, float) else np.zeros(keys.shape, bool)
        )
    return np.array([k == target for k in keys.tolist()], dtype=bool)


def _scored(scores: Any, labels: Any, positive: Label) -> tuple[npt.NDArray[np.float64], Any]:
    """Finite scores and positive flags of the rows with both a label and a score."""
    try:
        s = np.asarray(scores, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidSample(f"scores: expected numbers ({exc})") from exc
    if s.ndim != 1:
        raise InvalidSample("scores: expected a one-dimensional float array")
    y = _keys(labels, "labels")
    if s.shape != y.shape:
        raise InvalidSample(f"scores and labels differ in length ({s.size} != {y.size})")
    keep = np.isfinite(s) & ~_missing(y)
    return s[keep], _positive(y[keep], positive)


def _counts(predictions: Any, labels: Any, positive: Label) -> tuple[int, int, int]:
    p, y = _pairs(predictions, labels, ("predictions", "labels"))
    pred, true = _positive(p, positive), _positive(y, positive)
    return int((pred & true).sum()), int((pred & ~true).sum()), int((~pred & true).sum())


def accuracy(predictions: Any, labels: Any) -> float | None:
    """Share of rows whose prediction equals the label (any number of classes)."""
    p, y = _pairs(predictions, labels, ("predictions", "labels"))
    return float(np.mean(p == y)) if p.size else None


def precision(predictions: Any, labels: Any, positive: Label = None) -> float | None:
    """TP / (TP + FP); ``None`` without positive predictions."""
    tp, fp, _ = _counts(predictions, labels, positive)
    return tp / (tp + fp) if tp + fp else None


def recall(predictions: Any, labels: Any, positive: Label = None) -> float | None:
    """TP / (TP + FN); ``None`` without positive labels."""
    tp, _, fn = _counts(predictions, labels, positive)
    return tp / (tp + fn) if tp + fn else None


def f1(predictions: Any, labels: Any, positive: Label = None) -> float | None:
    """2TP / (2TP + FP + FN), the harmonic mean of precision and recall; ``None`` when there
    is neither a positive prediction nor a positive label (0 when one of them is undefined)."""
    tp, fp, fn = _counts(predictions, labels, positive)
    return 2 * tp / (2 * tp + fp + fn) if tp + fp + fn else None


def auc(scores: Any, labels: Any, positive: Label = None) -> float | None:
    """ROC AUC from ranks (ties averaged): ``(R1 - n1 (n1 + 1) / 2) / (n1 n0)``, where ``R1`` is
    the rank sum of the positives; equals Mann-Whitney U / (n1 n0). ``None`` with one class."""
    s, y = _scored(scores, labels, positive)
    n1 = int(y.sum())
    n0 = int(y.size - n1)
    if n1 == 0 or n0 == 0:
        return None
    ranks = stats.rankdata(s)
    return float((ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def log_loss(scores: Any, labels: Any, positive: Label = None) -> float | None:
    """Mean binary cross-entropy with scores clipped to ``[LOG_LOSS_EPS, 1 - LOG_LOSS_EPS]``."""
    s, y = _scored(scores, labels, positive)
    if s.size == 0:
        return None
    if ((s < 0) | (s > 1)).any():
        raise InvalidSample("log_loss: scores must be probabilities in [0, 1]")
    p = np.clip(s, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
    return float(-np.mean(np.where(y, np.log(p), np.log1p(-p))))


def _numeric(predictions: Any, labels: Any, what: str) -> npt.NDArray[np.float64]:
    p, y = _pairs(predictions, labels, ("predictions", "labels"))
    if p.dtype.kind != "f" or y.dtype.kind != "f":
        raise InvalidSample(f"{what}: predictions and labels must be numbers")
    with np.errstate(over="ignore", invalid="ignore"):
        err = np.asarray(p - y, dtype=np.float64)
    # a pair whose difference overflows (1e308 and -1e308) is skipped rather than turning the
    # whole window's error into infinity; ``compute`` counts only the pairs used
    return err[np.isfinite(err)]


def rmse(predictions: Any, labels: Any) -> float | None:
    """Root mean squared error."""
    err = _numeric(predictions, labels, "rmse")
    if not err.size:
        return None
    with np.errstate(over="ignore", invalid="ignore"):
        return float(np.sqrt(np.mean(err * err)))


def mae(predictions: Any, labels: Any) -> float | None:
    """Mean absolute error."""
    err = _numeric(predictions, labels, "mae")
    return float(np.mean(np.abs(err))) if err.size else None


@dataclass(frozen=True, slots=True)
class MetricValue:
    """A metric over a window: its value (``None`` if undefined), the rows used, and why not."""

    value: float | None
    n: int
    reason: str | None = None


_UNDEFINED: Final = {
    "precision": "no positive predictions",
    "recall": "no positive labels",
    "f1": "no positive predictions or labels",
    "auc": "the labels hold only one class",
}
_BY_NAME: Final[dict[str, Callable[[Any, Any, Label], float | None]]] = {
    "accuracy": lambda p, y, _: accuracy(p, y),
    "precision": precision,
    "recall": recall,
    "f1": f1,
    "auc": auc,
    "log_loss": log_loss,
    "rmse": lambda p, y, _: rmse(p, y),
    "mae": lambda p, y, _: mae(p, y),
}


def compute(metric: str, window: OutcomeWindow) -> MetricValue:
    """Compute built-in ``metric`` on ``window``; raises ``InvalidSample`` on unusable data."""
    if metric not in _BY_NAME:
        raise ValueError(f"{metric!r} is not a built-in metric")
    if metric in ("auc", "log_loss"):
        if window.scores is None:
            return MetricValue(None, 0, f"{metric} needs scores and the outcomes carry none")
        # Cleaned once; the positive flags then stand for the labels (True is the class 1).
        first, second = _scored(window.scores, window.labels, window.positive_label)
        positive: Label = None
    else:
        first, second = _pairs(window.predictions, window.labels, ("predictions", "labels"))
        positive = window.positive_label
    n = int(first.size)
    if n == 0:
        return MetricValue(None, 0, "no outcome has both a label and a prediction or score")
    if metric in ("rmse", "mae"):
        n = int(_numeric(first, second, metric).size)
        if n == 0:
            return MetricValue(None, 0, "no outcome pair has a finite error")
    value = _BY_NAME[metric](first, second, positive)
    if value is None:
        return MetricValue(None, n, f"{metric} is undefined: {_UNDEFINED.get(metric, 'no rows')}")
    return MetricValue(value, n)


BUILTIN_METRICS: Final = frozenset(metric.value for metric in Metric)
"""Metrics computed from outcomes; any other metric is read from metric points."""
