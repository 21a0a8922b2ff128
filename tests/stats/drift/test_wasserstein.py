"""Normalised Wasserstein: raw distance equals scipy's, normalisation and its floor."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from retrigger.stats.drift.wasserstein import WassersteinTest, wasserstein_distance
from retrigger.stats.profiles import ProfileOptions, numeric_profile


@pytest.mark.parametrize(
    ("n_ref", "n_cur", "decimals"),
    [
        (1, 1, None),
        (5, 1, None),
        (10, 40, 0),
        (2_000, 300, None),
        (50_000, 50_000, 2),
        (300_000, 1_000, None),
    ],
)
def test_distance_matches_scipy(
    n_ref: int, n_cur: int, decimals: int | None, rng: np.random.Generator
) -> None:
    ref, cur = rng.normal(100.0, 3.0, size=n_ref), rng.normal(100.5, 2.0, size=n_cur)
    if decimals is not None:
        ref, cur = np.round(ref, decimals), np.round(cur, decimals)
    got = wasserstein_distance(numeric_profile(ref), np.sort(cur))
    assert got == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-9)


def test_sketch_distance_is_close(rng: np.random.Generator) -> None:
    ref, cur = rng.lognormal(size=400_000), rng.lognormal(0.05, 1.0, size=20_000)
    sketch = numeric_profile(ref, ProfileOptions(form="sketch"))
    got = wasserstein_distance(sketch, np.sort(cur))
    assert got == pytest.approx(stats.wasserstein_distance(ref, cur), rel=1e-2)


def test_normalised_by_reference_sd(rng: np.random.Generator) -> None:
    ref = rng.normal(0.0, 4.0, size=5_000)
    result = WassersteinTest().evaluate(ref, ref + 2.0)
    assert result.details["distance"] == pytest.approx(2.0, rel=1e-12)
    assert result.statistic == pytest.approx(2.0 / ref.std(), rel=1e-12)


def test_constant_reference_uses_the_floor() -> None:
    same = WassersteinTest().evaluate([5.0] * 200, [5.0] * 200)
    moved = WassersteinTest().evaluate([5.0] * 200, [5.001] * 200)
    assert same.statistic == 0.0
    assert moved.statistic == pytest.approx(0.001 / 5e-6)
    assert moved.drifted


def test_golden_value() -> None:
    # W1 between {0..99} and {0.5..99.5} is 0.5; the reference sd is sqrt((100^2 - 1) / 12)
    ref = np.arange(100.0)
    result = WassersteinTest().evaluate(ref, ref + 0.5)
    assert result.statistic == pytest.approx(0.5 / np.sqrt(9999 / 12), rel=1e-12)
    assert not result.drifted
    assert result.p_value is None
    assert result.alpha is None
