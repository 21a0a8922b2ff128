"""Repeat folding: a scheduled evaluation that only repeats the product's last decision.

The periodic scheduler evaluates time rules every minute; when such an evaluation reaches the
verdict already stored and read nothing new, it is counted on that decision (``repeat_count``,
``last_repeated_at``) instead of stored again, and M-of-N histories do not count the same data
twice (:func:`window_identity` names the data a performance rule decided on).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from retrigger.decisions.models import Decision
from retrigger.decisions.schemas import Outcome
from retrigger.decisions.state import StateView
from retrigger.evaluation import PerformanceInput

if TYPE_CHECKING:
    from retrigger.decisions.service import Step


# a window's bounds move with every evaluation; the rest names the data it held
_WINDOW_BOUNDS = frozenset({"since", "until", "known_by"})


def window_identity(recorded: Mapping[str, Any] | None, data: PerformanceInput) -> str:
    """A digest of the data a performance rule decided on: the window it recorded without the
    bounds (outcome ids, counts, digest), the metric points it got and the baseline."""
    points = data.metric_points
    payload = {
        "window": {k: v for k, v in (recorded or {}).items() if k not in _WINDOW_BOUNDS},
        "values": None if points is None else [float(v) for v in points.values],
        "times": None if points is None else [str(t) for t in points.times],
        "baseline": data.baseline,
    }
    text = json.dumps(payload, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def _statuses(findings: list[dict[str, Any]]) -> list[tuple[Any, Any]]:
    return [(f.get("rule_id"), f.get("status")) for f in findings]


def repeats(previous: Decision, decision: Decision, *, step: Step, view: StateView) -> bool:
    """Whether the unstored ``decision`` only repeats ``previous``: same verdict, nothing new.

    Same verdict: outcome, suppressing guard, fired rules, policy version and fingerprint,
    reference version, every rule's status, and the budget left. Nothing new: no outcome fed to
    a concept-drift detector and no detector state changed (``view`` is the state before this
    evaluation), no schedule rule started or fired, and every performance rule decided on the
    data of its newest M-of-N history entry (:func:`window_identity`), so its history has
    nothing to learn. A fired decision launches a run: it never repeats.
    """
    if decision.outcome == Outcome.fired.value:
        return False
    same_verdict = (
        previous.outcome == decision.outcome
        and previous.suppressed_by == decision.suppressed_by
        and list(previous.fired_rules) == list(decision.fired_rules)
        and previous.policy_version == decision.policy_version
        and previous.policy_fingerprint == decision.policy_fingerprint
        and previous.reference_version == decision.reference_version
        and _statuses(previous.findings) == _statuses(decision.findings)
        and previous.inputs.get("budget_remaining") == decision.inputs.get("budget_remaining")
    )
    if not same_verdict:
        return False
    meta = step.meta
    if meta.consumed_ids is not None and meta.consumed_ids.size:
        return False
    for finding in step.result.findings:
        if finding.new_state is not None:
            stored = view.detectors.get(finding.rule_id)
            if (
                stored is None
                or stored.get("config") != meta.detector_configs.get(finding.rule_id)
                or stored.get("state") != finding.new_state
            ):
                return False
        if finding.type == "schedule" and (
            finding.holds or view.schedule_mark(finding.rule_id) is None
        ):
            return False
        if finding.type == "performance" and not view.same_window(
            finding.rule_id, step.windows.get(finding.rule_id)
        ):
            return False
    return True
