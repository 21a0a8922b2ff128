"""Pure policy evaluation: (effective policy, input windows, now) -> findings and outcome.

No database, no HTTP: the service reads the windows, calls :func:`evaluate_policy` in a worker
thread, then applies guards and stores the decision. See ``docs/evaluation.md``.
"""

from __future__ import annotations

from retrigger.evaluation.engine import Outcome, PolicyEvaluation, evaluate_policy, evaluate_rule
from retrigger.evaluation.findings import Finding, FindingWindow, RuleStatus
from retrigger.evaluation.inputs import (
    AlertInput,
    AlertView,
    ConceptDriftInput,
    DataDriftInput,
    MetricSeries,
    OutcomeWindow,
    PerformanceInput,
    RuleInput,
    ScheduleInput,
    StalenessInput,
)

__all__ = [
    "AlertInput",
    "AlertView",
    "ConceptDriftInput",
    "DataDriftInput",
    "Finding",
    "FindingWindow",
    "MetricSeries",
    "Outcome",
    "OutcomeWindow",
    "PerformanceInput",
    "PolicyEvaluation",
    "RuleInput",
    "RuleStatus",
    "ScheduleInput",
    "StalenessInput",
    "evaluate_policy",
    "evaluate_rule",
]
