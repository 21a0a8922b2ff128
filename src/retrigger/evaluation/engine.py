"""Apply one product's effective policy: every rule's finding, inhibition, combination, outcome.

Pure and deterministic: the same policy, inputs and ``now`` give the same evaluation. Data
problems never raise; a rule that cannot be decided reports ``insufficient_data``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from enum import StrEnum
from typing import Any, Final

from retrigger.errors import InvalidConfig
from retrigger.evaluation import rules
from retrigger.evaluation.findings import Finding, RuleStatus, as_utc, json_safe
from retrigger.evaluation.inputs import (
    AlertInput,
    ConceptDriftInput,
    DataDriftInput,
    PerformanceInput,
    RuleInput,
    ScheduleInput,
    StalenessInput,
)
from retrigger.policies.combination import AtLeast, Combination
from retrigger.policies.rules import RuleModel, RuleType
from retrigger.policies.schemas import PolicyBody

__all__ = ["Outcome", "PolicyEvaluation", "evaluate_policy", "evaluate_rule"]

_Evaluator = Callable[..., Finding]
_EVALUATORS: Final[dict[RuleType, tuple[type[Any], _Evaluator]]] = {
    RuleType.PERFORMANCE: (PerformanceInput, rules.evaluate_performance),
    RuleType.DATA_DRIFT: (DataDriftInput, rules.evaluate_data_drift),
    RuleType.CONCEPT_DRIFT: (ConceptDriftInput, rules.evaluate_concept_drift),
    RuleType.STALENESS: (StalenessInput, rules.evaluate_staleness),
    RuleType.SCHEDULE: (ScheduleInput, rules.evaluate_schedule),
    RuleType.ALERT: (AlertInput, rules.evaluate_alert),
}


class Outcome(StrEnum):
    """Result of a policy evaluation, before guards."""

    FIRED = "fired"
    NOT_FIRED = "not_fired"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class PolicyEvaluation:
    """Every finding of one evaluation and the combined outcome (JSON via ``as_dict()``).

    ``counted_rules`` are the rules that take part in ``combine`` (every rule that is not an
    inhibition source); ``holding_rules`` those of them that hold and are not inhibited;
    ``fired_rules`` equals ``holding_rules`` when the outcome is ``fired`` and is empty
    otherwise; ``insufficient_rules`` the counted, non-inhibited rules that lacked data.
    """

    evaluated_at: datetime
    outcome: Outcome
    combine: str
    required: int
    findings: list[Finding]
    counted_rules: list[str]
    holding_rules: list[str]
    fired_rules: list[str]
    inhibited_rules: list[str]
    insufficient_rules: list[str]
    suppressors: list[str]
    reason: str

    def finding(self, rule_id: str) -> Finding | None:
        """The finding of ``rule_id``, if the policy has that rule."""
        return next((f for f in self.findings if f.rule_id == rule_id), None)

    def new_states(self) -> dict[str, dict[str, Any]]:
        """Concept-drift detector states to store, by rule id."""
        return {f.rule_id: f.new_state for f in self.findings if f.new_state is not None}

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (safe for ``json.dumps(..., allow_nan=False)``)."""
        return {
            "evaluated_at": json_safe(self.evaluated_at),
            "outcome": self.outcome.value,
            "combine": self.combine,
            "required": self.required,
            "reason": self.reason,
            "counted_rules": list(self.counted_rules),
            "holding_rules": list(self.holding_rules),
            "fired_rules": list(self.fired_rules),
            "inhibited_rules": list(self.inhibited_rules),
            "insufficient_rules": list(self.insufficient_rules),
            "suppressors": list(self.suppressors),
            "findings": [f.as_dict() for f in self.findings],
        }


def _insufficient(rule: RuleModel, reason: str, state: dict[str, Any] | None = None) -> Finding:
    summary = f"insufficient data: {reason}"
    status = RuleStatus.INSUFFICIENT_DATA
    return Finding(rule.id, rule.type, status, summary, {"reason": reason}, new_state=state)


def evaluate_rule(rule: RuleModel, data: RuleInput | None, *, now: datetime) -> Finding:
    """One rule's finding; a missing or mismatched input, or rejected data, is insufficient."""
    expected, evaluate = _EVALUATORS[RuleType(rule.type)]
    if data is None:
        return _insufficient(rule, "no input was provided for this rule")
    if not isinstance(data, expected):
        return _insufficient(rule, f"expected {expected.__name__}, got {type(data).__name__}")
    try:
        return evaluate(rule, data, now=now)
    except InvalidConfig as exc:  # InvalidSample included: the data cannot be tested
        state = data.state if isinstance(data, ConceptDriftInput) else None
        return _insufficient(rule, exc.message, dict(state) if state is not None else None)


def _required(combine: Combination | AtLeast, n_counted: int) -> tuple[int, str]:
    """Holding rules needed to fire (at least 1: an ``all`` over no rule never fires)."""
    if isinstance(combine, AtLeast):
        return combine.at_least, f"at_least {combine.at_least}"
    if combine is Combination.ALL:
        return max(n_counted, 1), "all"
    return 1, "any"


def _inhibit(policy: PolicyBody, findings: list[Finding]) -> list[Finding]:
    """Mark the targets of every holding source (a source inhibits even if itself inhibited)."""
    holding = {f.rule_id for f in findings if f.holds}
    by: dict[str, list[str]] = {}
    for entry in policy.inhibit:
        if entry.source not in holding:
            continue
        targets = entry.targets
        if targets == "*":
            targets = [r.id for r in policy.rules if r.id != entry.source]
        for target in targets:
            by.setdefault(target, []).append(entry.source)
    return [replace(f, inhibited_by=tuple(by.get(f.rule_id, ()))) for f in findings]


def _listing(findings: list[Finding]) -> str:
    return "; ".join(f"{f.rule_id}: {f.summary}" for f in findings) + "."


def _reason(
    outcome: Outcome,
    head: str,
    holding: list[Finding],
    lacking: list[Finding],
    inhibited: list[Finding],
    blind: list[str],
) -> str:
    """The sentence explaining the outcome: counts, then the findings that decided it."""
    if outcome is Outcome.FIRED:
        reason = f"Fired {head}. {_listing(holding)}"
        if blind:
            reason += f" Suppressor(s) {', '.join(blind)} lacked data, so could not inhibit."
    elif outcome is Outcome.INSUFFICIENT_DATA:
        ids = ", ".join(f.rule_id for f in lacking)
        reason = f"Insufficient data {head}; {ids} lacked data. {_listing(lacking)}"
    else:
        reason = f"Not fired {head}."
        if holding:
            reason += f" Holding: {', '.join(f.rule_id for f in holding)}."
    if inhibited:
        notes = ", ".join(f"{f.rule_id} by {'/'.join(f.inhibited_by)}" for f in inhibited)
        reason += f" Inhibited: {notes}."
    return reason


def evaluate_policy(
    policy: PolicyBody, inputs: Mapping[str, RuleInput], now: datetime
) -> PolicyEvaluation:
    """Evaluate every rule of ``policy`` on ``inputs`` (by rule id) and combine the findings.

    Inhibition sources are suppressors: while one holds its targets are inhibited, and it never
    counts towards ``combine`` itself. ``combine`` counts holding, non-inhibited rules among the
    others. The outcome is ``insufficient_data`` when the policy did not fire but would have if
    every counted, non-inhibited rule lacking data had held. ``now`` must be timezone-aware.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("evaluate_policy needs a timezone-aware 'now'")
    now = as_utc(now)
    findings = _inhibit(policy, [evaluate_rule(r, inputs.get(r.id), now=now) for r in policy.rules])
    suppressors = list(dict.fromkeys(entry.source for entry in policy.inhibit))
    counted = [f for f in findings if f.rule_id not in suppressors]
    active = [f for f in counted if not f.inhibited_by]
    holding = [f for f in active if f.holds]
    lacking = [f for f in active if f.status is RuleStatus.INSUFFICIENT_DATA]
    required, combine_text = _required(policy.combine, len(counted))
    inhibited = [f for f in findings if f.inhibited_by]
    if len(holding) >= required:
        outcome = Outcome.FIRED
    elif len(holding) + len(lacking) >= required:
        outcome = Outcome.INSUFFICIENT_DATA
    else:
        outcome = Outcome.NOT_FIRED
    blind = [
        f.rule_id
        for f in findings
        if f.rule_id in suppressors and f.status is RuleStatus.INSUFFICIENT_DATA
    ]
    head = f"{len(holding)} of {len(counted)} counted rules hold, {required} needed"
    reason = _reason(outcome, f"({combine_text}): {head}", holding, lacking, inhibited, blind)
    return PolicyEvaluation(
        evaluated_at=now,
        outcome=outcome,
        combine=combine_text,
        required=required,
        findings=findings,
        counted_rules=[f.rule_id for f in counted],
        holding_rules=[f.rule_id for f in holding],
        fired_rules=[f.rule_id for f in holding] if outcome is Outcome.FIRED else [],
        inhibited_rules=[f.rule_id for f in inhibited],
        insufficient_rules=[f.rule_id for f in lacking],
        suppressors=suppressors,
        reason=reason,
    )
