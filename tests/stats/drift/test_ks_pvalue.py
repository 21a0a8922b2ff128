"""Exact and asymptotic KS p-values against scipy; our exact algorithms against each other."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from scipy import special, stats

from retrigger.stats.drift import ks_pvalue as ks_pvalue_module
from retrigger.stats.drift.ks_pvalue import (
    SCIPY_LATTICE,
    exact_pvalue,
    ks_pvalue,
    kstwo_sf,
    smirnov_sf,
)

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


def test_scipys_compiled_routine_is_found() -> None:
    # Not a correctness matter (our own recurrences take over without it), but losing it makes
    # exact p-values for unequal sizes 1.5-2x slower than scipy's ks_2samp: notice it here.
    assert SCIPY_LATTICE is not None, "scipy.stats._stats_pythran routine moved: see ks_pvalue"


@pytest.mark.parametrize(("n1", "n2", "shift"), [c for c in CASES if c[0] != c[1]])
def test_unequal_sizes_equal_scipy_exactly(
    n1: int, n2: int, shift: float, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
    expected = _scipy(a, b, "exact")
    got = exact_pvalue(float(expected.statistic), n1, n2)
    assert got == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)
    if SCIPY_LATTICE is not None:  # where the compiled routine is chosen, the same number
        monkeypatch.setattr(ks_pvalue_module, "_columns_cheaper", lambda *_: False)
        assert exact_pvalue(float(expected.statistic), n1, n2) == float(expected.pvalue)


@pytest.mark.parametrize(("n1", "n2", "shift"), [(10_000, 1_000, 0.3), (5_000, 700, 0.5)])
def test_wide_bands_use_our_columns_and_match_scipy(
    n1: int, n2: int, shift: float, rng: np.random.Generator
) -> None:
    a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
    expected = _scipy(a, b, "exact")
    d = float(expected.statistic)
    g = math.gcd(n1, n2)
    bands = ks_pvalue_module._bands(n2, n1, g, round(d * (n1 // g) * n2))
    assert bands is not None
    assert ks_pvalue_module._columns_cheaper(bands, n2, n1)
    assert exact_pvalue(d, n1, n2) == exact_pvalue(d, n1, n2, robust=False)
    assert exact_pvalue(d, n1, n2) == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


@pytest.mark.parametrize(("n1", "n2", "shift"), CASES)
def test_without_scipys_routine_our_recurrences_take_over(
    n1: int, n2: int, shift: float, rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ks_pvalue_module, "SCIPY_LATTICE", None)
    a, b = rng.normal(size=n1), rng.normal(shift, 1.0, size=n2)
    expected = _scipy(a, b, "exact")
    got = exact_pvalue(float(expected.statistic), n1, n2)
    assert got == pytest.approx(expected.pvalue, rel=1e-9, abs=1e-300)


def test_kstwo_sf_matches_scipy_on_every_branch() -> None:
    grid = []
    for n in (10.0, 140.0, 141.0, 1_000.0, 9_091.0, 90_909.0, 333_333.0):
        for nd2 in (0.01, 0.5, 1.0, 2.19, 2.2, 5.0, 30.0, 200.0, 369.0, 371.0):
            grid.append((min(float(np.sqrt(nd2 / n)), 0.999), n))
        grid += [(0.5, n), (0.7, n), (0.9 / n, n), (1.0 - 0.5 / n, n)]
    for d, n in grid:
        expected = float(np.clip(stats.kstwo.sf(d, n), 0.0, 1.0))
        assert kstwo_sf(d, n) == pytest.approx(expected, rel=1e-9, abs=1e-300), (d, n)


@pytest.mark.parametrize(
    ("n", "nd2"),
    [(n, nd2) for n in (141, 2_000, 90_909, 400_000) for nd2 in (2.2, 9.0, 60.0, 360.0) if nd2 < n],
)
def test_smirnov_sum_matches_scipy_special(n: int, nd2: float) -> None:
    d = float(np.sqrt(nd2 / n))
    assert smirnov_sf(n, d) == pytest.approx(special.smirnov(n, d), rel=1e-11)


def test_drifted_large_window_p_value_matches_scipy(rng: np.random.Generator) -> None:
    a, b = rng.normal(size=300_000), rng.normal(0.01, 1.0, size=100_000)
    expected = _scipy(a, b, "auto")
    n_eff = round(300_000 * 100_000 / 400_000)
    assert 2.2 <= n_eff * float(expected.statistic) ** 2 < 370  # the Smirnov-sum branch
    p, method = ks_pvalue(float(expected.statistic), 300_000, 100_000)
    assert method == "asymptotic"
    assert p == pytest.approx(expected.pvalue, rel=1e-9)
