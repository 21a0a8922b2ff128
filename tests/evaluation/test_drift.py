"""Data drift (profiles vs current columns) and concept drift (detector state across calls)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from retrigger.evaluation import ConceptDriftInput, DataDriftInput, RuleStatus
from retrigger.evaluation.drift import evaluate_concept_drift, evaluate_data_drift
from retrigger.policies.rules import ConceptDriftRule, DataDriftRule
from retrigger.stats.profiles import Profile, build_profile

from .factories import NOW, make_rule

FEATURES = ("age", "income", "tenure", "score")


def drift_rule(**fields: Any) -> DataDriftRule:
    rule = make_rule(**{"id": "drift", "type": "data_drift", "drift_share": 0.5, **fields})
    assert isinstance(rule, DataDriftRule)
    return rule


def concept_rule(detector: str = "adwin", **params: Any) -> ConceptDriftRule:
    rule = make_rule(id="errors", type="concept_drift", detector=detector, params=params)
    assert isinstance(rule, ConceptDriftRule)
    return rule


@pytest.fixture
def profiles(rng: np.random.Generator) -> dict[str, Profile]:
    return {name: build_profile(rng.normal(size=2000), "numeric") for name in FEATURES}


def current(rng: np.random.Generator, shifted: int) -> dict[str, np.ndarray]:
    """Current columns; the first ``shifted`` features moved by one standard deviation."""
    return {
        name: rng.normal(1.0 if i < shifted else 0.0, size=2000) for i, name in enumerate(FEATURES)
    }


class TestEvaluateDataDrift:
    def test_shift_on_three_of_four_features_holds(
        self, rng: np.random.Generator, profiles: dict[str, Profile]
    ) -> None:
        data = DataDriftInput(3, profiles, current(rng, 3), n_rows=2000)
        finding = evaluate_data_drift(drift_rule(), data, now=NOW)
        assert finding.status is RuleStatus.HOLDS
        assert finding.details["drifted_features"] == ["age", "income", "tenure"]
        assert finding.details["reference_version"] == 3
        assert finding.window.n == 2000

    def test_no_shift_does_not_hold(
        self, rng: np.random.Generator, profiles: dict[str, Profile]
    ) -> None:
        data = DataDriftInput(3, profiles, current(rng, 0))
        assert evaluate_data_drift(drift_rule(), data, now=NOW).status is RuleStatus.NOT_HOLDS

    def test_listed_features_only(
        self, rng: np.random.Generator, profiles: dict[str, Profile]
    ) -> None:
        data = DataDriftInput(3, profiles, current(rng, 1))
        finding = evaluate_data_drift(drift_rule(features=["age", "score"]), data, now=NOW)
        assert finding.status is RuleStatus.HOLDS  # 1 of 2 >= 0.5
        assert set(finding.details["features"]) == {"age", "score"}

    def test_importance_weights_the_share(
        self, rng: np.random.Generator, profiles: dict[str, Profile]
    ) -> None:
        weights = {"age": 1.0, "income": 1.0, "tenure": 1.0, "score": 9.0}
        data = DataDriftInput(3, profiles, current(rng, 3), weights=weights)
        finding = evaluate_data_drift(drift_rule(weight_by_importance=True), data, now=NOW)
        assert finding.status is RuleStatus.NOT_HOLDS
        assert finding.details["share"] == pytest.approx(0.25)

    def test_without_reference_is_insufficient(self, rng: np.random.Generator) -> None:
        data = DataDriftInput(None, {}, current(rng, 0))
        assert (
            evaluate_data_drift(drift_rule(), data, now=NOW).status is RuleStatus.INSUFFICIENT_DATA
        )

    def test_small_window_is_insufficient(
        self, rng: np.random.Generator, profiles: dict[str, Profile]
    ) -> None:
        small = {name: rng.normal(size=20) for name in FEATURES}
        finding = evaluate_data_drift(drift_rule(), DataDriftInput(3, profiles, small), now=NOW)
        assert finding.status is RuleStatus.INSUFFICIENT_DATA

    def test_unprofiled_features_are_reported(
        self, rng: np.random.Generator, profiles: dict[str, Profile]
    ) -> None:
        data = DataDriftInput(3, profiles, current(rng, 0))
        finding = evaluate_data_drift(drift_rule(features=["age", "zip"]), data, now=NOW)
        assert finding.details["features_without_reference"] == ["zip"]

    def test_weighting_without_importances_is_insufficient(
        self, rng: np.random.Generator, profiles: dict[str, Profile]
    ) -> None:
        data = DataDriftInput(3, profiles, current(rng, 3))
        finding = evaluate_data_drift(drift_rule(weight_by_importance=True), data, now=NOW)
        assert finding.status is RuleStatus.INSUFFICIENT_DATA


def error_stream(
    rng: np.random.Generator, before: float, after: float, n: int = 1000
) -> np.ndarray:
    return np.concatenate([rng.random(n) < before, rng.random(n) < after]).astype(np.float64)


class TestEvaluateConceptDrift:
    def test_adwin_detects_error_rate_rise(self, rng: np.random.Generator) -> None:
        errors = error_stream(rng, 0.1, 0.5)
        finding = evaluate_concept_drift(concept_rule(), ConceptDriftInput(None, errors), now=NOW)
        assert finding.status is RuleStatus.HOLDS
        assert 1000 <= finding.details["drift_indices"][0] < 1300

    def test_stable_errors_do_not_hold(self, rng: np.random.Generator) -> None:
        errors = (rng.random(2000) < 0.1).astype(np.float64)
        finding = evaluate_concept_drift(concept_rule(), ConceptDriftInput(None, errors), now=NOW)
        assert finding.status is RuleStatus.NOT_HOLDS
        assert finding.new_state is not None

    @pytest.mark.parametrize("detector", ["adwin", "ddm", "page_hinkley", "kswin", "hddm_a"])
    def test_carried_state_equals_one_pass(self, rng: np.random.Generator, detector: str) -> None:
        rule = concept_rule(detector)
        errors = error_stream(rng, 0.1, 0.6, n=1500)
        whole = evaluate_concept_drift(rule, ConceptDriftInput(None, errors), now=NOW)
        state, found, offset = None, [], 0
        for chunk in np.split(errors, [700, 1800, 2300]):
            finding = evaluate_concept_drift(rule, ConceptDriftInput(state, chunk), now=NOW)
            found += [offset + i for i in finding.details["drift_indices"]]
            state, offset = finding.new_state, offset + chunk.size
        assert whole.details["drift_indices"]
        assert found == whole.details["drift_indices"]
        assert state == whole.new_state

    def test_no_new_errors_keeps_state(self, rng: np.random.Generator) -> None:
        first = evaluate_concept_drift(
            concept_rule(), ConceptDriftInput(None, rng.random(100) < 0.2), now=NOW
        )
        finding = evaluate_concept_drift(
            concept_rule(), ConceptDriftInput(first.new_state, np.array([])), now=NOW
        )
        assert finding.status is RuleStatus.NOT_HOLDS
        assert finding.details["reason"] == "no new outcomes"
        assert finding.new_state == first.new_state

    def test_rejected_errors_are_insufficient_and_keep_state(self) -> None:
        state = {"detector": "ddm", "opaque": True}
        data = ConceptDriftInput(state, np.array([0.0, 0.5, 1.0]))
        finding = evaluate_concept_drift(concept_rule("ddm"), data, now=NOW)
        assert finding.status is RuleStatus.INSUFFICIENT_DATA
        assert finding.new_state == state

    def test_state_of_another_configuration_restarts(self, rng: np.random.Generator) -> None:
        old = evaluate_concept_drift(
            concept_rule(delta=0.01), ConceptDriftInput(None, rng.random(50) < 0.2), now=NOW
        )
        finding = evaluate_concept_drift(
            concept_rule(delta=0.002), ConceptDriftInput(old.new_state, np.zeros(10)), now=NOW
        )
        assert finding.details["restarted"] is not None
        assert finding.new_state is not None
        assert finding.new_state["params"]["delta"] == 0.002

    def test_unusable_state_restarts(self, rng: np.random.Generator) -> None:
        good = evaluate_concept_drift(
            concept_rule(), ConceptDriftInput(None, rng.random(50) < 0.2), now=NOW
        )
        assert good.new_state is not None
        broken = {**good.new_state, "stats": {"garbage": 1}}
        finding = evaluate_concept_drift(
            concept_rule(), ConceptDriftInput(broken, np.zeros(5)), now=NOW
        )
        assert finding.details["restarted"].startswith("the stored state is unusable")
