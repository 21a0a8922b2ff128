"""Building blocks of the evaluation tests: validated rules and policies, simple inputs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from pydantic import TypeAdapter

from retrigger.evaluation import AlertInput, AlertView, OutcomeWindow, StalenessInput
from retrigger.policies.rules import Rule, RuleModel
from retrigger.policies.schemas import PolicyBody

NOW = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)
"""A fixed evaluation time (a Monday)."""

_RULE: TypeAdapter[RuleModel] = TypeAdapter(Rule)


def make_rule(**fields: Any) -> RuleModel:
    """A validated rule from its document fields."""
    return _RULE.validate_python(fields)


def make_policy(rules: list[dict[str, Any]], **fields: Any) -> PolicyBody:
    """A validated policy body."""
    return PolicyBody.model_validate({"rules": rules, **fields})


def stale_rule(rule_id: str) -> dict[str, Any]:
    """A staleness rule document: a cheap rule whose status the input fully controls."""
    return {"id": rule_id, "type": "staleness", "max_age": "30d"}


def stale(holds: bool | None) -> StalenessInput:
    """Input making a ``stale_rule`` hold (True), not hold (False) or lack data (None)."""
    if holds is None:
        return StalenessInput(model_trained_at=None)
    return StalenessInput(model_trained_at=NOW - timedelta(days=40 if holds else 10))


def alert(fingerprint: str = "fp-1", status: str = "firing", **labels: str) -> AlertView:
    """An Alertmanager alert with the given labels."""
    return AlertView(fingerprint, labels, status, NOW - timedelta(hours=1), "alertmanager")


def alerts(*views: AlertView) -> AlertInput:
    """The alert input of a product."""
    return AlertInput(list(views))


def outcomes_with_accuracy(accuracy: float, n: int = 1000) -> OutcomeWindow:
    """Binary outcomes whose accuracy is exactly ``accuracy`` (rounded to 1/n)."""
    labels = np.tile([0, 1], n // 2)
    predictions = labels.copy()
    wrong = round((1 - accuracy) * n)
    predictions[:wrong] = 1 - predictions[:wrong]
    return OutcomeWindow(
        predictions=predictions, labels=labels, start=NOW - timedelta(days=7), end=NOW
    )


def regression_outcomes(error: float, n: int = 1000) -> OutcomeWindow:
    """Regression outcomes whose RMSE and MAE both equal ``error``."""
    labels = np.linspace(0.0, 10.0, n)
    return OutcomeWindow(predictions=labels + error, labels=labels)
