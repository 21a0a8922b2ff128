"""Chi-square, L-infinity and Z: scipy agreement, sparse and unseen categories, golden values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from retrigger.stats.drift.chi2 import Chi2Test, pool_sparse
from retrigger.stats.drift.linf import LinfTest
from retrigger.stats.drift.z import ZTest
from retrigger.stats.profiles import FeatureKind, categorical_profile_from_counts


def _counts(**kw: int) -> list[str]:
    return [label for label, n in kw.items() for _ in range(n)]


class TestChi2:
    def test_matches_chi2_contingency(self) -> None:
        ref, cur = _counts(a=120, b=80, c=50), _counts(a=90, b=100, c=60)
        result = Chi2Test().evaluate(ref, cur)
        table = np.array([[120, 80, 50], [90, 100, 60]])
        chi2, p, dof, _ = stats.chi2_contingency(table, correction=False)
        assert result.statistic == pytest.approx(chi2, rel=1e-12)
        assert result.p_value == pytest.approx(p, rel=1e-9)
        assert result.details["dof"] == dof

    def test_unseen_category_is_tested_not_crashing(self) -> None:
        result = Chi2Test().evaluate(_counts(a=200, b=100), _counts(a=100, b=100, new=100))
        chi2, p, _, _ = stats.chi2_contingency(
            np.array([[200, 100, 0], [100, 100, 100]]), correction=False
        )
        assert result.statistic == pytest.approx(chi2, rel=1e-12)
        assert result.drifted

    def test_sparse_categories_are_pooled(self) -> None:
        ref = np.array([100.0, 100.0, 3.0, 3.0, 0.0])
        cur = np.array([100.0, 100.0, 2.0, 3.0, 0.0])
        r, c, pooled = pool_sparse(ref, cur, 5.0)
        assert pooled == 2
        assert r.tolist() == [100.0, 100.0, 6.0]
        assert c.tolist() == [100.0, 100.0, 5.0]

    def test_sparse_pool_too_small_is_merged_into_smallest(self) -> None:
        r, c, pooled = pool_sparse(np.array([50.0, 80.0, 1.0]), np.array([60.0, 70.0, 0.0]), 5.0)
        assert pooled == 1
        assert r.tolist() == [51.0, 80.0]
        assert c.tolist() == [60.0, 70.0]

    def test_single_category_gives_p_one(self) -> None:
        result = Chi2Test().evaluate(["a"] * 150, ["a"] * 120)
        assert (result.statistic, result.p_value, result.drifted) == (0.0, 1.0, False)

    def test_golden_value(self) -> None:
        result = Chi2Test().evaluate(_counts(x=60, y=40), _counts(x=40, y=60))
        # 2x2 table [[60, 40], [40, 60]]: every expected count 50, chi2 = 4 * 10^2 / 50
        assert result.statistic == pytest.approx(8.0, rel=1e-12)
        assert result.p_value == pytest.approx(stats.chi2.sf(8.0, 1), rel=1e-12)
        assert result.effect_size == pytest.approx(np.sqrt(0.5 * 2 * 0.2**2 / 1.0), rel=1e-12)


class TestLinf:
    def test_golden_value_and_category(self) -> None:
        result = LinfTest().evaluate(_counts(a=50, b=50), _counts(a=50, b=20, c=30))
        assert result.statistic == pytest.approx(0.3)
        assert result.details["category"] == "b"
        assert result.drifted


class TestZ:
    def test_square_equals_uncorrected_chi2(self) -> None:
        ref = [True] * 130 + [False] * 370
        cur = [True] * 90 + [False] * 160
        result = ZTest().evaluate(ref, cur)
        chi2, p, _, _ = stats.chi2_contingency(np.array([[130, 370], [90, 160]]), correction=False)
        assert result.statistic**2 == pytest.approx(chi2, rel=1e-12)
        assert result.p_value == pytest.approx(p, rel=1e-9)

    def test_constant_samples_give_p_one(self) -> None:
        result = ZTest().evaluate([True] * 200, [True] * 300)
        assert (result.statistic, result.p_value, result.effect_size) == (0.0, 1.0, 0.0)

    def test_golden_value(self) -> None:
        result = ZTest().evaluate([True] * 50 + [False] * 50, [True] * 70 + [False] * 30)
        z = 0.2 / np.sqrt(0.6 * 0.4 * (2 / 100))
        assert result.statistic == pytest.approx(z, rel=1e-12)
        assert result.p_value == pytest.approx(2 * stats.norm.sf(z), rel=1e-12)
        h = 2 * np.arcsin(np.sqrt(0.7)) - 2 * np.arcsin(np.sqrt(0.5))
        assert result.effect_size == pytest.approx(h, rel=1e-12)

    def test_accepts_count_profiles(self) -> None:
        ref = categorical_profile_from_counts({"true": 500, "false": 500}, kind=FeatureKind.BOOLEAN)
        cur = categorical_profile_from_counts({"true": 700, "false": 300}, kind=FeatureKind.BOOLEAN)
        assert ZTest().evaluate(ref, cur).drifted
