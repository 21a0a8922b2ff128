"""The worked example of docs/evaluation.md, on the tier-1-classifier template."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import yaml

from retrigger.evaluation import (
    AlertInput,
    AlertView,
    ConceptDriftInput,
    DataDriftInput,
    Outcome,
    OutcomeWindow,
    PerformanceInput,
    RuleInput,
    StalenessInput,
    evaluate_policy,
)
from retrigger.policies.schemas import PolicyBody
from retrigger.stats.profiles import build_profile

from .factories import NOW

TEMPLATE = (
    Path(__file__).parents[2] / "examples" / "policies" / "templates" / "tier-1-classifier.yaml"
)
AT = NOW.replace(hour=6)


@pytest.fixture
def policy() -> PolicyBody:
    spec = yaml.safe_load(TEMPLATE.read_text())["spec"]
    return PolicyBody.model_validate({k: v for k, v in spec.items() if k != "overridable"})


@pytest.fixture
def inputs(rng: np.random.Generator) -> dict[str, RuleInput]:
    labels = np.tile([0, 1], 1200)
    predictions = labels.copy()
    predictions[:456] = 1 - predictions[:456]  # accuracy 0.81
    names = [f"f{i}" for i in range(10)]
    profiles = {name: build_profile(rng.normal(size=5000), "numeric") for name in names}
    current = {n: rng.normal(0.5 if i < 3 else 0.0, size=3000) for i, n in enumerate(names)}
    return {
        "accuracy-drop": PerformanceInput(
            OutcomeWindow(predictions, labels), baseline=0.87, history=[False, True, False, True]
        ),
        "feature-drift": DataDriftInput(4, profiles, current, n_rows=3000),
        "error-stream": ConceptDriftInput(None, (rng.random(800) < 0.19).astype(np.float64)),
        "staleness": StalenessInput(AT - timedelta(days=12), new_labelled_samples=4000),
        "data-quality-alert": AlertInput(),
    }


DQ = AlertView(
    "3f9a",
    {"alertname": "DataQualityDegraded", "severity": "critical"},
    "firing",
    AT - timedelta(hours=2),
)


class TestWorkedExample:
    def test_fires_on_accuracy_and_drift(
        self, policy: PolicyBody, inputs: dict[str, RuleInput]
    ) -> None:
        result = evaluate_policy(policy, inputs, AT)
        assert result.outcome is Outcome.FIRED
        assert result.fired_rules == ["accuracy-drop", "feature-drift"]
        assert result.reason.startswith("Fired (any): 2 of 4 counted rules hold, 1 needed.")

    def test_data_quality_alert_holds_back(
        self, policy: PolicyBody, inputs: dict[str, RuleInput]
    ) -> None:
        inputs["data-quality-alert"] = AlertInput([DQ])
        result = evaluate_policy(policy, inputs, AT)
        assert result.outcome is Outcome.NOT_FIRED
        assert result.inhibited_rules == ["accuracy-drop", "feature-drift", "error-stream"]

    def test_unknown_training_time_is_insufficient(
        self, policy: PolicyBody, inputs: dict[str, RuleInput]
    ) -> None:
        inputs["data-quality-alert"] = AlertInput([DQ])
        inputs["staleness"] = StalenessInput(None)
        result = evaluate_policy(policy, inputs, AT)
        assert result.outcome is Outcome.INSUFFICIENT_DATA
        assert result.insufficient_rules == ["staleness"]
