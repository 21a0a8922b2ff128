"""Non-finite errors (an overflowed regression error) are skipped one by one, not batch-wide."""

from __future__ import annotations

import numpy as np

from retrigger.evaluation import ConceptDriftInput, OutcomeWindow, RuleStatus, evaluate_policy
from retrigger.evaluation.metrics import compute

from .factories import NOW, make_policy

POLICY = make_policy([{"id": "cd", "type": "concept_drift"}])


class TestConceptDriftSkipsNonFinite:
    def test_finite_errors_of_the_batch_are_fed(self) -> None:
        errors = np.concatenate([np.zeros(50), [np.inf, np.nan]])
        result = evaluate_policy(POLICY, {"cd": ConceptDriftInput(None, errors)}, NOW)
        finding = result.findings[0]
        assert finding.status is RuleStatus.NOT_HOLDS
        assert finding.details["n_new"] == 50
        assert finding.details["n_skipped_not_finite"] == 2
        clean = evaluate_policy(POLICY, {"cd": ConceptDriftInput(None, np.zeros(50))}, NOW)
        assert result.new_states() == clean.new_states()

    def test_only_non_finite_errors_are_insufficient_and_keep_the_state(self) -> None:
        first = evaluate_policy(POLICY, {"cd": ConceptDriftInput(None, np.zeros(20))}, NOW)
        state = first.new_states()["cd"]
        bad = ConceptDriftInput(state, np.array([np.inf, -np.inf]))
        result = evaluate_policy(POLICY, {"cd": bad}, NOW)
        assert result.findings[0].status is RuleStatus.INSUFFICIENT_DATA
        assert "2 new error(s) that are not finite" in result.findings[0].summary
        assert result.new_states() == {"cd": state}


class TestErrorMetricsSkipNonFinite:
    def test_mae_leaves_overflowing_pairs_out(self) -> None:
        window = OutcomeWindow(np.array([1.0, 3.0, 1e308]), np.array([1.0, 1.0, -1e308]))
        value = compute("mae", window)
        assert (value.value, value.n) == (1.0, 2)

    def test_no_finite_pair_is_undefined(self) -> None:
        window = OutcomeWindow(np.array([1e308]), np.array([-1e308]))
        value = compute("rmse", window)
        assert value.value is None
        assert value.reason == "no outcome pair has a finite error"
