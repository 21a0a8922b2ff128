"""Exact and asymptotic KS p-values against scipy; the two exact algorithms against each other."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import stats

from retrigger.stats.drift.ks_pvalue import exact_pvalue, ks_pvalue

CASES = [
    (1, 5, 0.0),
    (10, 7, 0.0),
    (10, 7, 1.5),
    (37, 100, 0.0),
    (37, 100, 1.0),
    (250, 250, 0.2),
    (300, 1200, 0.3),
    (1000, 100, 0.5),
    (2000, 1999, 0.0),
    (2000, 1999, 0.3),
    (3000, 700, 1.0),
]


def _scipy(a: np.ndarray, b: np.ndarray, method: str) -> stats._stats_py.KstestResult:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return stats.ks_2samp(a, b, method=method)


@pytest.mark.parametrize(("n1", "n2", "shift"), CASES)
def test_exact_matches_scipy(n1: int, n2: int, shift: float, rng: np.random.Generator) -> None:
    a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
    expected = _scipy(a, b, "exact")
    got = exact_pvalue(float(expected.statistic), n1, n2)
    assert got == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("n1", "n2", "shift"), [c for c in CASES if c[0] != c[1]])
def test_column_and_diagonal_paths_agree(
    n1: int, n2: int, shift: float, rng: np.random.Generator
) -> None:
    a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
    d = float(_scipy(a, b, "asymp").statistic)
    fast, robust = exact_pvalue(d, n1, n2, robust=False), exact_pvalue(d, n1, n2, robust=True)
    if robust > 1e-100:  # the fast path is only used where it is accurate
        assert fast == pytest.approx(robust, rel=1e-9)


def test_asymptotic_matches_scipy(rng: np.random.Generator) -> None:
    for n1, n2, shift in [(20_000, 500, 0.0), (50_000, 30_000, 0.03), (10_001, 10, 1.0)]:
        a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
        expected = _scipy(a, b, "auto")
        p, method = ks_pvalue(float(expected.statistic), n1, n2)
        assert method == "asymptotic"
        assert p == pytest.approx(expected.pvalue, rel=1e-12)


def test_auto_switch_follows_scipy() -> None:
    assert ks_pvalue(0.1, 10_000, 10_000)[1] == "exact"
    assert ks_pvalue(0.1, 10_001, 50)[1] == "asymptotic"
    assert ks_pvalue(0.1, 50, 50, method="asymp")[1] == "asymptotic"
    assert ks_pvalue(0.1, 20_000, 20_000, method="exact")[1] == "exact"


def test_zero_distance_and_full_separation() -> None:
    assert exact_pvalue(0.0, 30, 40) == 1.0
    full = exact_pvalue(1.0, 5, 7)
    assert full == pytest.approx(2 / math.comb(12, 5))
