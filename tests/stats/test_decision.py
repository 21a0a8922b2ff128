"""The decision rule and multiple-testing corrections."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from retrigger.stats.decision import Correction, adjust_pvalues, decide, weighted_share


class TestAdjust:
    P = [0.01, 0.04, 0.03, 0.005, 0.5]

    def test_bonferroni_multiplies_and_caps(self) -> None:
        assert adjust_pvalues(self.P, "bonferroni") == pytest.approx([0.05, 0.2, 0.15, 0.025, 1.0])

    def test_benjamini_hochberg_matches_scipy(self) -> None:
        expected = stats.false_discovery_control(self.P, method="bh")
        assert adjust_pvalues(self.P, Correction.FDR_BH) == pytest.approx(expected.tolist())

    def test_none_and_empty(self) -> None:
        assert adjust_pvalues(self.P, "none") == self.P
        assert adjust_pvalues([], "fdr_bh") == []

    def test_bh_random_against_scipy(self, rng: np.random.Generator) -> None:
        p = rng.random(50) ** 3
        assert adjust_pvalues(p.tolist(), "fdr_bh") == pytest.approx(
            stats.false_discovery_control(p).tolist()
        )


class TestDecide:
    def test_significant_and_material(self) -> None:
        drifted, reason = decide(
            p_value=0.001, effect=0.3, alpha=0.05, min_effect=0.1, effect_name="D"
        )
        assert drifted
        assert reason.startswith("drift: significant")

    def test_significant_but_not_material(self) -> None:
        drifted, reason = decide(
            p_value=1e-30, effect=0.008, alpha=0.05, min_effect=0.05, effect_name="D"
        )
        assert not drifted
        assert "not material" in reason

    def test_material_but_not_significant(self) -> None:
        drifted, reason = decide(
            p_value=0.2, effect=0.3, alpha=0.05, min_effect=0.1, effect_name="D"
        )
        assert not drifted
        assert "not significant" in reason

    def test_distance_only_uses_effect_alone(self) -> None:
        assert decide(p_value=None, effect=0.1, alpha=0.05, min_effect=0.1, effect_name="W")[0]
        assert not decide(p_value=None, effect=0.09, alpha=0.05, min_effect=0.1, effect_name="W")[0]


def test_weighted_share() -> None:
    assert weighted_share([True, False, True], [1.0, 1.0, 2.0]) == 0.75
    assert weighted_share([True], [0.0]) == 0.0
