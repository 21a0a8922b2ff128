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


def _indexed_cases(rng: np.random.Generator) -> list[tuple[str, np.ndarray, np.ndarray]]:
    ref = rng.normal(size=50_000)
    return [
        ("continuous", ref, rng.normal(size=5_000)),
        ("shifted", ref, rng.normal(0.3, 1.0, size=20_000)),
        ("window below", ref, rng.normal(-20.0, 1.0, size=3_000)),
        ("window above", ref, rng.normal(20.0, 1.0, size=3_000)),
        ("one value", ref, np.full(4_000, 0.25)),
        ("window of grid values", ref, np.sort(ref)[::7][:5_000]),
        ("same size", ref, rng.normal(size=50_000)),
        ("rounded", np.round(ref, 1), np.round(rng.normal(size=8_000), 1)),
        ("rounded shifted", np.round(ref, 2), np.round(rng.normal(0.1, 1.0, size=9_000), 2)),
        ("signed zeros", np.concatenate((ref, [0.0] * 500)), np.array([-0.0, 0.0] * 1_500)),
        ("lognormal", np.exp(ref), rng.lognormal(0.05, 1.0, size=2_000)),
    ]


@pytest.mark.parametrize("form", ["sorted", "counts"])
def test_coarse_index_path_equals_direct_path_and_scipy(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    from retrigger.stats.drift import ks as ks_module
    from retrigger.stats.profiles import ProfileOptions

    for name, ref, cur in _indexed_cases(rng):
        profile = numeric_profile(ref, ProfileOptions(form=form))  # type: ignore[arg-type]
        c = np.sort(cur)
        if c.size > profile.values.size:
            continue  # the reference-side path serves these
        indexed = ks_statistic(profile, c)
        monkeypatch.setattr(ks_module, "_INDEX_MIN_WINDOW", 10**12)
        direct = ks_statistic(profile, c)
        monkeypatch.undo()
        assert indexed == direct, name  # the same floating-point number, not just close
        expected = stats.ks_2samp(ref, cur).statistic
        assert indexed == pytest.approx(expected, abs=1e-12), name
