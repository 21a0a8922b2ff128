"""The engine: inputs per rule, inhibition, combination and the outcome."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import numpy as np
import pytest

from retrigger.evaluation import (
    ConceptDriftInput,
    DataDriftInput,
    Outcome,
    OutcomeWindow,
    PerformanceInput,
    RuleInput,
    RuleStatus,
    evaluate_policy,
)
from retrigger.stats.profiles import build_profile

from .factories import NOW, alert, alerts, make_policy, stale, stale_rule

DQ_ALERT = {
    "id": "dq",
    "type": "alert",
    "matchers": [{"name": "alertname", "value": "DataQualityDegraded"}],
}


def three_stale(combine: Any) -> Any:
    return make_policy([stale_rule("a"), stale_rule("b"), stale_rule("c")], combine=combine)


def statuses(a: bool | None, b: bool | None, c: bool | None) -> dict[str, RuleInput]:
    return {"a": stale(a), "b": stale(b), "c": stale(c)}


class TestInputs:
    def test_missing_input_is_insufficient(self) -> None:
        result = evaluate_policy(make_policy([stale_rule("a")]), {}, NOW)
        finding = result.findings[0]
        assert finding.status is RuleStatus.INSUFFICIENT_DATA
        assert finding.details["reason"] == "no input was provided for this rule"
        assert result.outcome is Outcome.INSUFFICIENT_DATA

    def test_input_of_another_rule_type_is_insufficient(self) -> None:
        result = evaluate_policy(make_policy([stale_rule("a")]), {"a": PerformanceInput()}, NOW)
        assert "expected StalenessInput" in result.findings[0].details["reason"]

    def test_invalid_sample_becomes_insufficient_with_message(self) -> None:
        policy = make_policy(
            [{"id": "p", "type": "performance", "metric": "accuracy", "threshold": 0.9}]
        )
        bad = OutcomeWindow(np.array([1, 0, 1]), np.array([1, 0]))
        result = evaluate_policy(policy, {"p": PerformanceInput(bad)}, NOW)
        assert result.findings[0].status is RuleStatus.INSUFFICIENT_DATA
        assert "differ in length" in result.findings[0].summary

    def test_rejected_errors_keep_detector_state(self) -> None:
        policy = make_policy([{"id": "e", "type": "concept_drift"}])
        first = evaluate_policy(policy, {"e": ConceptDriftInput(None, np.zeros(50))}, NOW)
        state = first.new_states()["e"]
        result = evaluate_policy(policy, {"e": ConceptDriftInput(state, np.array([np.nan]))}, NOW)
        assert result.findings[0].status is RuleStatus.INSUFFICIENT_DATA
        assert result.new_states() == {"e": state}

    def test_naive_now_is_refused(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            evaluate_policy(make_policy([stale_rule("a")]), {}, datetime(2024, 1, 1))


class TestInhibition:
    def test_holding_alert_suppresses_holding_drift(self, rng: np.random.Generator) -> None:
        policy = make_policy(
            [{"id": "drift", "type": "data_drift"}, DQ_ALERT],
            inhibit=[{"source": "dq", "targets": ["drift"]}],
        )
        profiles = {f: build_profile(rng.normal(size=1000), "numeric") for f in "wxyz"}
        shifted = {f: rng.normal(1.0, size=1000) for f in "wxyz"}
        inputs: dict[str, RuleInput] = {
            "drift": DataDriftInput(1, profiles, shifted),
            "dq": alerts(alert(alertname="DataQualityDegraded")),
        }
        result = evaluate_policy(policy, inputs, NOW)
        drift = result.finding("drift")
        assert drift is not None
        assert drift.status is RuleStatus.HOLDS
        assert drift.inhibited_by == ("dq",)
        assert result.outcome is Outcome.NOT_FIRED
        assert result.suppressors == ["dq"]
        assert "Inhibited: drift by dq" in result.reason

    def test_without_the_alert_drift_fires(self) -> None:
        policy = make_policy(
            [stale_rule("a"), DQ_ALERT], inhibit=[{"source": "dq", "targets": "*"}]
        )
        result = evaluate_policy(policy, {"a": stale(True), "dq": alerts()}, NOW)
        assert result.outcome is Outcome.FIRED
        assert result.fired_rules == ["a"]

    def test_star_targets_every_other_rule(self) -> None:
        policy = make_policy(
            [stale_rule("a"), stale_rule("b"), DQ_ALERT], inhibit=[{"source": "dq", "targets": "*"}]
        )
        inputs: dict[str, RuleInput] = {
            "a": stale(True),
            "b": stale(True),
            "dq": alerts(alert(alertname="DataQualityDegraded")),
        }
        result = evaluate_policy(policy, inputs, NOW)
        assert result.inhibited_rules == ["a", "b"]
        assert result.outcome is Outcome.NOT_FIRED

    def test_inhibited_rule_lacking_data_does_not_count(self) -> None:
        policy = make_policy(
            [stale_rule("a"), DQ_ALERT], inhibit=[{"source": "dq", "targets": ["a"]}]
        )
        inputs: dict[str, RuleInput] = {
            "a": stale(None),
            "dq": alerts(alert(alertname="DataQualityDegraded")),
        }
        assert evaluate_policy(policy, inputs, NOW).outcome is Outcome.NOT_FIRED

    def test_suppressor_alone_does_not_fire(self) -> None:
        policy = make_policy(
            [stale_rule("a"), DQ_ALERT], inhibit=[{"source": "dq", "targets": ["a"]}]
        )
        inputs: dict[str, RuleInput] = {
            "a": stale(False),
            "dq": alerts(alert(alertname="DataQualityDegraded")),
        }
        result = evaluate_policy(policy, inputs, NOW)
        assert result.outcome is Outcome.NOT_FIRED
        assert result.counted_rules == ["a"]


class TestCombination:
    @pytest.mark.parametrize(
        ("a", "b", "c", "outcome"),
        [
            (True, True, True, "fired"),
            (True, True, False, "not_fired"),
            (True, True, None, "insufficient_data"),
            (True, False, None, "not_fired"),
        ],
    )
    def test_all(self, a: bool | None, b: bool | None, c: bool | None, outcome: str) -> None:
        result = evaluate_policy(three_stale("all"), statuses(a, b, c), NOW)
        assert result.outcome == outcome

    @pytest.mark.parametrize(
        ("a", "b", "c", "outcome"),
        [
            (True, False, False, "not_fired"),
            (True, True, False, "fired"),
            (True, None, False, "insufficient_data"),
            (False, None, False, "not_fired"),
            (True, True, None, "fired"),
        ],
    )
    def test_at_least_two(
        self, a: bool | None, b: bool | None, c: bool | None, outcome: str
    ) -> None:
        result = evaluate_policy(three_stale({"at_least": 2}), statuses(a, b, c), NOW)
        assert result.outcome == outcome

    @pytest.mark.parametrize(
        ("a", "b", "c", "outcome"),
        [
            (False, False, False, "not_fired"),
            (False, None, False, "insufficient_data"),
            (True, None, None, "fired"),
        ],
    )
    def test_any(self, a: bool | None, b: bool | None, c: bool | None, outcome: str) -> None:
        result = evaluate_policy(three_stale("any"), statuses(a, b, c), NOW)
        assert result.outcome == outcome

    def test_reason_lists_why(self) -> None:
        result = evaluate_policy(three_stale({"at_least": 2}), statuses(True, None, False), NOW)
        assert result.reason.startswith(
            "Insufficient data (at_least 2): 1 of 3 counted rules hold, 2 needed; b lacked data."
        )
        assert result.insufficient_rules == ["b"]
        assert result.fired_rules == []


class TestResult:
    def test_deterministic(self) -> None:
        policy = make_policy(
            [stale_rule("a"), {"id": "e", "type": "concept_drift", "detector": "kswin"}]
        )
        errors = np.random.default_rng(7).random(500) < 0.3
        inputs: dict[str, RuleInput] = {"a": stale(True), "e": ConceptDriftInput(None, errors)}
        first = evaluate_policy(policy, inputs, NOW).as_dict()
        assert evaluate_policy(policy, inputs, NOW).as_dict() == first

    def test_as_dict_is_strict_json(self) -> None:
        policy = make_policy(
            [
                {
                    "id": "p",
                    "type": "performance",
                    "metric": "rmse",
                    "threshold": 1.0,
                    "min_samples": 1,
                }
            ]
        )
        data = PerformanceInput(OutcomeWindow(np.array([np.inf, 1.0]), np.array([1.0, np.nan])))
        text = json.dumps(evaluate_policy(policy, {"p": data}, NOW).as_dict(), allow_nan=False)
        assert '"outcome": "insufficient_data"' in text
