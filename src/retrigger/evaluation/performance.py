"""The ``performance`` rule: a metric against an absolute or relative threshold, M of N.

A breach is one evaluation's metric being worse than the bound; the rule holds when at least
``m`` of the last ``n`` decided evaluations (this one included) breached.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from retrigger.errors import InvalidSample
from retrigger.evaluation.findings import Finding, FindingWindow, RuleStatus, as_utc, number
from retrigger.evaluation.findings import percent as pct
from retrigger.evaluation.inputs import MetricSeries, PerformanceInput
from retrigger.evaluation.metrics import BUILTIN_METRICS, compute
from retrigger.policies.rules import Direction, PerformanceRule

__all__ = ["evaluate_performance", "m_of_n"]


@dataclass(frozen=True, slots=True)
class _Measure:
    value: float | None
    n: int
    source: str
    window: FindingWindow
    reason: str | None = None


def _floats(values: Any, what: str) -> npt.NDArray[np.float64]:
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidSample(f"{what}: expected numbers ({exc})") from exc
    if arr.ndim != 1:
        raise InvalidSample(f"{what}: expected a one-dimensional array, got shape {arr.shape}")
    return arr


def _bounds(times: Any) -> tuple[datetime | None, datetime | None]:
    """First and last time of ``datetime`` objects or a ``datetime64`` array (read as UTC)."""
    arr = np.asarray(times)
    if arr.dtype.kind == "M":
        valid = arr[~np.isnat(arr)].astype("datetime64[us]")
        if not valid.size:
            return None, None
        return as_utc(valid.min().item()), as_utc(valid.max().item())
    moments = [as_utc(t) for t in times if isinstance(t, datetime)]
    return min(moments, default=None), max(moments, default=None)


def _from_points(points: MetricSeries) -> _Measure:
    values = _floats(points.values, "metric points")
    counts = np.ones_like(values)
    if points.sample_counts is not None:
        counts = _floats(points.sample_counts, "metric points: sample_counts")
        if counts.shape != values.shape or not (np.isfinite(counts) & (counts >= 0)).all():
            raise InvalidSample("metric points: sample_counts must be >= 0, one per value")
    keep = np.isfinite(values)
    total = float(counts[keep].sum())
    window = FindingWindow(*_bounds(points.times), int(total))
    if total <= 0:
        return _Measure(None, 0, "metric_points", window, "no metric point in the window")
    with np.errstate(over="ignore", invalid="ignore"):
        value = float(np.dot(values[keep], counts[keep]) / total)
    return _Measure(value, int(total), "metric_points", window)


def _measure(rule: PerformanceRule, data: PerformanceInput) -> _Measure:
    outcomes = data.outcomes
    if rule.metric in BUILTIN_METRICS and outcomes is not None and outcomes.n > 0:
        result = compute(rule.metric, outcomes)
        window = FindingWindow(outcomes.start, outcomes.end, result.n)
        return _Measure(result.value, result.n, "outcomes", window, result.reason)
    if data.metric_points is not None:
        return _from_points(data.metric_points)
    what = "outcomes or metric points" if rule.metric in BUILTIN_METRICS else "metric points"
    return _Measure(None, 0, "none", FindingWindow(n=0), f"no {what} in the window")


def m_of_n(history: Sequence[bool | None], breach: bool, n: int) -> list[bool]:
    """The breach flags of the last ``n`` decided evaluations, oldest first, this one last.

    ``None`` entries of ``history`` (evaluations without enough data) are skipped.
    """
    decided = [flag for flag in history if flag is not None]
    return [*decided[-(n - 1) :], breach] if n > 1 else [breach]


def _breach(
    rule: PerformanceRule, value: float, baseline: float | None
) -> tuple[bool, str, dict[str, Any]]:
    higher = rule.effective_direction is Direction.HIGHER_IS_BETTER
    worse_side = "below" if higher else "above"
    if rule.threshold is not None:
        breach = value < rule.threshold if higher else value > rule.threshold
        relation = f"is {worse_side}" if breach else f"is not {worse_side}"
        text = f"{rule.metric} {number(value)} {relation} the threshold {number(rule.threshold)}"
        return breach, text, {"threshold": rule.threshold}
    assert rule.relative_threshold is not None
    assert baseline is not None
    change = (value - baseline) / abs(baseline)
    degradation = -change if higher else change
    breach = degradation > rule.relative_threshold
    side = "below" if change < 0 else "above"
    text = (
        f"{rule.metric} {number(value)} is {pct(abs(change))} {side} the baseline "
        f"{number(baseline)} (limit {pct(rule.relative_threshold)} {worse_side})"
    )
    details = {
        "relative_threshold": rule.relative_threshold,
        "baseline": baseline,
        "relative_change": change,
        "degradation": degradation,
    }
    return breach, text, details


def evaluate_performance(
    rule: PerformanceRule, data: PerformanceInput, *, now: datetime
) -> Finding:
    """Evaluate a ``performance`` rule on one window.

    Parameters
    ----------
    rule
        The rule: metric, direction, ``threshold`` xor ``relative_threshold``,
        ``min_samples``, ``n`` and ``m``.
    data
        Outcomes (built-in metrics are computed from them) or metric points (mean over the
        window, used for custom metrics or when no outcomes exist), the deployed version's
        baseline, and this rule's previous breaches.
    now
        Evaluation time (unused: the window is already cut).

    Returns
    -------
    Finding
        ``holds`` when at least ``m`` of the last ``n`` decided evaluations breached;
        ``insufficient_data`` (``breach`` None) when the metric is undefined, rests on fewer
        than ``min_samples`` samples, or a relative threshold has no usable baseline.

    Notes
    -----
    A breach is a value strictly worse than ``threshold``, or worse than the baseline by more
    than ``relative_threshold`` times ``|baseline|``; "worse" follows the direction (lower
    accuracy, higher rmse).
    """
    measure = _measure(rule, data)
    details: dict[str, Any] = {
        "metric": rule.metric,
        "direction": rule.effective_direction.value,
        "source": measure.source,
        "value": measure.value,
        "n_samples": measure.n,
        "min_samples": rule.min_samples,
        "m": rule.m,
        "n": rule.n,
    }

    def insufficient(reason: str) -> Finding:
        details["reason"] = reason
        summary = f"insufficient data for {rule.metric}: {reason}"
        return Finding(
            rule.id, rule.type, RuleStatus.INSUFFICIENT_DATA, summary, details, None, measure.window
        )

    if measure.value is None:
        return insufficient(measure.reason or "the metric is undefined")
    if not math.isfinite(measure.value):
        return insufficient("the metric is not a finite number")
    if measure.n < rule.min_samples:
        return insufficient(f"{measure.n} samples, {rule.min_samples} needed")
    baseline = data.baseline
    if rule.relative_threshold is not None:
        if baseline is None or not math.isfinite(baseline):
            return insufficient("no baseline for the deployed version (relative threshold)")
        if baseline == 0:
            return insufficient("the baseline is 0, so a relative change is undefined")
    breach, text, bound = _breach(rule, measure.value, baseline)
    flags = m_of_n(data.history, breach, rule.n)
    count = sum(flags)
    holds = count >= rule.m
    details.update(bound)
    details.update(breach=breach, window_breaches=flags, breaches=count)
    if rule.n > 1:
        text += (
            f"; breached in {count} of the last {len(flags)} evaluations "
            f"(needs {rule.m} of {rule.n})"
        )
    status = RuleStatus.HOLDS if holds else RuleStatus.NOT_HOLDS
    return Finding(rule.id, rule.type, status, text, details, breach, measure.window)
