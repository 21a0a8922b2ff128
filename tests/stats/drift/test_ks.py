"""KS against a profile equals scipy's ks_2samp: statistic to 1e-12, p-values to 1e-9."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from retrigger.stats.drift.ks import KSTest, ks_statistic
from retrigger.stats.profiles import numeric_profile

SIZES = [
    (10, 10, None),
    (10, 25, 0),
    (200, 130, None),
    (1_000, 1_000, 1),
    (5_000, 800, None),
    (10_000, 10_000, 2),
    (30_000, 2_000, None),
    (100_000, 100_000, 2),
    (1_000_000, 1_000, None),
    (1_000_000, 200_000, 3),
    (500, 1_000_000, None),
]


@pytest.mark.parametrize(("n_ref", "n_cur", "decimals"), SIZES)
def test_matches_scipy(
    n_ref: int, n_cur: int, decimals: int | None, rng: np.random.Generator
) -> None:
    ref, cur = rng.normal(size=n_ref), rng.normal(0.02, 1.0, size=n_cur)
    if decimals is not None:  # ties inside and across the samples
        ref, cur = np.round(ref, decimals), np.round(cur, decimals)
    result = KSTest().evaluate(numeric_profile(ref), cur, min_samples=1)
    expected = stats.ks_2samp(ref, cur)
    assert result.statistic == pytest.approx(expected.statistic, abs=1e-12)
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    assert result.details["p_method"] == ("exact" if max(n_ref, n_cur) <= 10_000 else "asymptotic")


def test_forced_asymptotic_matches_scipy(rng: np.random.Generator) -> None:
    ref, cur = rng.normal(size=800), rng.normal(0.1, 1.0, size=600)
    result = KSTest({"method": "asymp"}).evaluate(ref, cur)
    expected = stats.ks_2samp(ref, cur, method="asymp")
    assert result.p_value == pytest.approx(expected.pvalue, rel=1e-12)


def test_statistic_with_values_outside_the_reference_range() -> None:
    profile = numeric_profile(np.arange(10.0))
    assert ks_statistic(profile, np.array([-5.0, -4.0])) == 1.0
    assert ks_statistic(profile, np.array([20.0, 30.0])) == 1.0
    assert ks_statistic(profile, np.arange(10.0)) == 0.0


def test_golden_value() -> None:
    ref, cur = np.arange(100.0), np.arange(20.0, 120.0)
    result = KSTest().evaluate(ref, cur)
    assert result.statistic == pytest.approx(0.2, abs=1e-15)
    # P(D >= h/n) for equal sizes: 2 sum_k (-1)^(k+1) C(2n, n - k h) / C(2n, n), exactly
    exact = Fraction(
        2 * sum((-1) ** (k + 1) * math.comb(200, 100 - 20 * k) for k in range(1, 6)),
        math.comb(200, 100),
    )
    assert result.p_value == pytest.approx(float(exact), rel=1e-12)
    assert result.drifted is True
    assert result.effect_size == result.statistic
