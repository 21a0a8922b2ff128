"""The ``data_drift`` and ``concept_drift`` rules, on top of :mod:`retrigger.stats`.

Data drift compares reference profiles with the current window's columns; concept drift feeds
the new errors to a streaming detector whose JSON state travels between evaluations.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

import numpy as np

from retrigger.errors import InvalidConfig, InvalidSample
from retrigger.evaluation.findings import Finding, FindingWindow, RuleStatus, number
from retrigger.evaluation.inputs import ConceptDriftInput, DataDriftInput
from retrigger.policies.detectors import Detector
from retrigger.policies.rules import ConceptDriftRule, DataDriftRule
from retrigger.stats import detectors
from retrigger.stats.decision import Correction
from retrigger.stats.drift import DriftStatus
from retrigger.stats.evaluate import DriftConfig, evaluate_features

__all__ = ["evaluate_concept_drift", "evaluate_data_drift"]

_STATUS: Final = {
    DriftStatus.DRIFT: RuleStatus.HOLDS,
    DriftStatus.NO_DRIFT: RuleStatus.NOT_HOLDS,
    DriftStatus.INSUFFICIENT_DATA: RuleStatus.INSUFFICIENT_DATA,
}
_MAX_INDICES: Final = 100
"""Detector indices kept in a finding's details (the counts are always complete)."""


def _names(names: list[str], limit: int = 10) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f" and {len(names) - limit} more" if len(names) > limit else "")


def _weights(data: DataDriftInput, features: list[str]) -> dict[str, float]:
    weights: dict[str, float] = {}
    bad: list[str] = []
    for name in features:
        value = data.weights.get(name, 0.0)
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            bad.append(name)
        elif not (math.isfinite(float(value)) and value >= 0):
            bad.append(name)
        else:
            weights[name] = float(value)
    if bad:
        raise InvalidSample(f"feature importances must be finite and >= 0: {_names(bad)}")
    return weights


def evaluate_data_drift(rule: DataDriftRule, data: DataDriftInput, *, now: datetime) -> Finding:
    """Evaluate a ``data_drift`` rule on one window.

    Parameters
    ----------
    rule
        Features (``*``: every feature with a reference profile), test, ``alpha``,
        correction, ``min_effect``, ``min_samples``, ``drift_share``, ``weight_by_importance``.
    data
        Reference profiles (of ``reference_version``), the current columns and the schema's
        feature importances.
    now
        Evaluation time (unused: the window is already cut).

    Returns
    -------
    Finding
        The status of :func:`retrigger.stats.evaluate.evaluate_features` (``drift`` holds);
        ``details`` is its ``as_dict()`` plus the reference version and the selected features
        that have no reference profile. Insufficient data without a reference, without a
        profiled feature, or when importance weighting finds no importance.
    """
    window = FindingWindow(data.window_start, data.window_end, data.n_rows)
    details: dict[str, Any] = {"reference_version": data.reference_version}

    def insufficient(reason: str) -> Finding:
        details["reason"] = reason
        summary = f"insufficient data: {reason}"
        return Finding(
            rule.id, rule.type, RuleStatus.INSUFFICIENT_DATA, summary, details, window=window
        )

    if data.reference_version is None:
        return insufficient(f"the product has no reference ({rule.reference})")
    selected = list(data.profiles) if rule.features == "*" else list(rule.features)
    unprofiled = [name for name in selected if name not in data.profiles]
    profiles = {name: data.profiles[name] for name in selected if name in data.profiles}
    details["features_without_reference"] = unprofiled
    if not profiles:
        return insufficient(f"reference v{data.reference_version} profiles no selected feature")
    weights = None
    if rule.weight_by_importance:
        weights = _weights(data, list(profiles))
        if sum(weights.values()) <= 0:
            return insufficient("weight_by_importance is set but no selected feature has one")
    config = DriftConfig(
        test=rule.test.value,
        alpha=rule.alpha,
        correction=Correction(rule.correction.value),
        min_effect=rule.min_effect,
        min_samples=rule.min_samples,
        drift_share=rule.drift_share,
        weights=weights,
    )
    result = evaluate_features(profiles, data.current, config)
    details.update(result.as_dict())
    status = _STATUS[result.status]
    if status is RuleStatus.INSUFFICIENT_DATA:
        return insufficient(result.reason)
    summary = f"data drift vs reference v{data.reference_version}: {result.reason}"
    if result.drifted_features:
        summary += f" (drifted: {_names(result.drifted_features)})"
    return Finding(rule.id, rule.type, status, summary, details, window=window)


def _params(rule: ConceptDriftRule) -> dict[str, Any]:
    params: dict[str, Any] = rule.params.model_dump(mode="json")
    if rule.detector is Detector.KSWIN and params.get("seed") is None:
        # KSWIN samples its reference; without a seed it would read OS entropy and the same
        # stream could give different decisions. A seed derived from the rule id keeps it
        # deterministic; the seed then travels inside the state.
        params["seed"] = zlib.crc32(rule.id.encode())
    return params


def _detector(
    rule: ConceptDriftRule, state: Mapping[str, Any] | None
) -> tuple[detectors.AnyDetector, str | None]:
    """The detector to continue, and why a stored state was not used (if it was not)."""
    fresh = detectors.create(rule.detector.value, _params(rule))
    if state is None:
        return fresh, None
    expected = fresh.to_state()
    if state.get("detector") != expected["detector"] or state.get("params") != expected["params"]:
        return fresh, "the stored state belongs to another detector configuration; restarted"
    try:
        return detectors.restore(state), None
    except InvalidConfig as exc:
        return fresh, f"the stored state is unusable ({exc.message}); restarted"


def evaluate_concept_drift(
    rule: ConceptDriftRule, data: ConceptDriftInput, *, now: datetime
) -> Finding:
    """Evaluate a ``concept_drift`` rule on the errors received since the last evaluation.

    Parameters
    ----------
    rule
        Detector and its parameters.
    data
        The detector's previous JSON state (``None``: fresh) and the new errors, oldest first.
    now
        Evaluation time (unused).

    Returns
    -------
    Finding
        ``holds`` when the detector flags a drift anywhere in this batch; ``new_state`` is the
        state to store for the next evaluation. Without new errors: ``not_holds`` ("no new
        outcomes") and the state unchanged. Errors that are not finite (NaN, an overflowed
        regression error) are skipped one by one and counted in ``n_skipped_not_finite`` (only
        such errors: ``insufficient_data``, the state unchanged); errors
        the detector rejects (non 0/1 for DDM, EDDM, HDDM_A): ``insufficient_data`` and the
        state unchanged.

    Notes
    -----
    Feeding a stream in several evaluations flags the same positions as feeding it at once
    (the state carries everything). A stored state whose detector or parameters differ from
    the rule's (the policy changed) is discarded and the detector restarts.
    """
    errors = np.asarray(data.errors, dtype=np.float64)
    # one overflowing error (1e308 - -1e308) must not make the detector refuse the whole batch:
    # the finite ones are fed, the others skipped and counted
    finite = np.isfinite(errors)
    skipped = int(errors.size - np.count_nonzero(finite))
    if skipped:
        errors = errors[finite]
    old_state = dict(data.state) if data.state is not None else None
    window = FindingWindow(data.start, data.end, int(errors.size))
    detector, restarted = _detector(rule, data.state)
    details: dict[str, Any] = {
        "detector": rule.detector.value,
        "params": detector.params.model_dump(mode="json"),
        "n_new": int(errors.size),
        "n_skipped_not_finite": skipped,
        "restarted": restarted,
    }
    name = rule.detector.value
    if errors.size == 0:
        details["reason"] = "no new outcomes"
        summary = f"{name}: no new outcomes since the last evaluation"
        if skipped:  # outcomes came, but none the detector can take
            details["reason"] = "no new outcome has a finite error"
            summary = (
                f"insufficient data: {name} skipped {skipped} new error(s) that are not finite"
            )
            status = RuleStatus.INSUFFICIENT_DATA
            return Finding(rule.id, rule.type, status, summary, details, None, window, old_state)
        return Finding(
            rule.id, rule.type, RuleStatus.NOT_HOLDS, summary, details, None, window, old_state
        )
    try:
        result = detector.update_many(errors)
    except InvalidSample as exc:
        details["reason"] = exc.message
        summary = f"insufficient data: {name} rejected the errors ({exc.message})"
        status = RuleStatus.INSUFFICIENT_DATA
        return Finding(rule.id, rule.type, status, summary, details, None, window, old_state)
    values = errors.astype(np.float64)
    details.update(
        mean_error=float(values.mean()),
        drift_indices=result.drifts[:_MAX_INDICES],
        n_drifts=len(result.drifts),
        warning_indices=result.warnings[:_MAX_INDICES],
        n_warnings=len(result.warnings),
        warning=detector.warning_detected,
    )
    if result.drifts:
        first = result.drifts[0]
        before, after = values[: first + 1], values[first + 1 :]
        summary = (
            f"{name} detected a change in the error stream at new outcome {first + 1} of "
            f"{errors.size} (mean error {number(float(before.mean()))} up to it"
        )
        summary += f", {number(float(after.mean()))} after)" if after.size else ")"
        if len(result.drifts) > 1:
            summary += f"; {len(result.drifts) - 1} more change(s) in this batch"
        status = RuleStatus.HOLDS
    else:
        summary = (
            f"{name}: no change in the error stream over {errors.size} new outcomes "
            f"(mean error {number(float(values.mean()))})"
        )
        status = RuleStatus.NOT_HOLDS
    return Finding(rule.id, rule.type, status, summary, details, None, window, detector.to_state())
