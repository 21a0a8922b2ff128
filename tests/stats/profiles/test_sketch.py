"""Quantile sketch: KS error at most 1e-4 against the exact reference, and the same decisions."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from retrigger.stats.drift.ks import KSTest, ks_statistic
from retrigger.stats.profiles import NumericForm, ProfileOptions, numeric_profile
from retrigger.stats.profiles.sketch import lattice_step, probability_grid

Sampler = Callable[[np.random.Generator, int, float], np.ndarray]

DISTRIBUTIONS: dict[str, Sampler] = {
    "normal": lambda g, n, s: g.normal(s, 1.0, size=n),
    "lognormal": lambda g, n, s: g.lognormal(s, 1.0, size=n),
    "bimodal": lambda g, n, s: (
        np.where(g.random(n) < 0.4, g.normal(-2, 0.5, n), g.normal(2, 1, n)) + s
    ),
    "rounded": lambda g, n, s: np.round(g.normal(s, 1.0, size=n), 3),
}


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(DISTRIBUTIONS))
def test_sketch_ks_error_and_decisions(
    name: str, make_rng: Callable[[int], np.random.Generator]
) -> None:
    sample = DISTRIBUTIONS[name]
    g = make_rng(7)
    reference = sample(g, 1_000_000, 0.0)
    exact = numeric_profile(reference, ProfileOptions(form="sorted"))
    sketch = numeric_profile(reference, ProfileOptions(form="sketch"))
    assert sketch.form is NumericForm.SKETCH
    test = KSTest()
    worst = 0.0
    for m in (1_000, 10_000, 100_000):
        for shift in (0.0, 0.5 / np.sqrt(m), 2.0 / np.sqrt(m), 0.1):
            current = sample(g, m, shift)
            d_exact = ks_statistic(exact, np.sort(current))
            d_sketch = ks_statistic(sketch, np.sort(current))
            worst = max(worst, abs(d_exact - d_sketch))
            a, b = test.evaluate(exact, current), test.evaluate(sketch, current)
            assert a.drifted == b.drifted, (m, shift, a.p_value, b.p_value)
    assert worst <= 1e-4


def test_lattice_step_detection() -> None:
    assert lattice_step(np.round(np.arange(0, 5, 0.01), 2)) == pytest.approx(0.01)
    assert lattice_step(np.array([0.0, 0.1, 0.3, 1.7])) == pytest.approx(0.1)
    assert lattice_step(np.array([0.0, 1.0, np.pi])) == 0.0


def test_grid_is_finer_in_the_tails() -> None:
    grid = probability_grid(1_000_000, 2000)
    assert 1800 <= grid.size <= 2100
    assert np.all((grid > 0) & (grid < 1))
    gaps = np.diff(grid)
    assert gaps[0] < gaps[grid.size // 2] / 10


def test_sketch_is_exact_at_knots(rng: np.random.Generator) -> None:
    data = rng.exponential(size=50_000)
    sketch = numeric_profile(data, ProfileOptions(form="sketch", sketch_size=500))
    s = np.sort(data)
    knots = sketch.values
    exact = np.searchsorted(s, knots, "right")
    assert np.abs(sketch.cdf_counts(knots) - exact).max() <= 0.5
