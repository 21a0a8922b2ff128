"""Numeric profiles: form choice, exact CDF queries, integrals, quantiles, bins, client inputs."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate

from retrigger.stats.errors import InvalidSample
from retrigger.stats.profiles import (
    NumericForm,
    ProfileOptions,
    numeric_profile,
    numeric_profile_from_histogram,
    numeric_profile_from_quantiles,
)


class TestFormChoice:
    def test_continuous_data_keeps_sorted_values(self, rng: np.random.Generator) -> None:
        profile = numeric_profile(rng.normal(size=2000))
        assert profile.form is NumericForm.SORTED
        assert np.all(np.diff(profile.values) >= 0)

    def test_repeated_values_use_counts(self, rng: np.random.Generator) -> None:
        data = np.round(rng.normal(size=5000), 1)
        profile = numeric_profile(data)
        assert profile.form is NumericForm.COUNTS
        assert profile.weights.sum() == 5000
        assert profile.values.size == np.unique(data).size

    def test_above_the_cap_auto_switches_to_a_sketch(self, rng: np.random.Generator) -> None:
        profile = numeric_profile(rng.normal(size=5000), ProfileOptions(max_values=1000))
        assert profile.form is NumericForm.SKETCH
        assert profile.n == 5000

    def test_forced_sorted_form_subsamples_order_statistics(self, rng: np.random.Generator) -> None:
        data = rng.normal(size=10_000)
        capped = numeric_profile(data, ProfileOptions(form="sorted", max_values=1000))
        exact = numeric_profile(data)
        assert capped.values.size == 1000
        assert capped.n == 10_000
        x = np.linspace(-3, 3, 501)
        error = np.abs(capped.cdf_counts(x) / capped.total - exact.cdf_counts(x) / exact.total)
        assert error.max() <= 1 / 1000

    def test_missing_values_are_recorded(self) -> None:
        profile = numeric_profile([1.0, 2.0, np.nan, 3.0])
        assert (profile.n, profile.n_missing) == (3, 1)

    def test_arrays_are_read_only(self, rng: np.random.Generator) -> None:
        profile = numeric_profile(rng.normal(size=100))
        with pytest.raises(ValueError, match="read-only"):
            profile.values[0] = 1.0


@pytest.mark.parametrize("form", ["sorted", "counts"])
class TestExactQueries:
    def test_cdf_counts_match_a_direct_count(self, rng: np.random.Generator, form: str) -> None:
        data = np.round(rng.normal(size=3000), 2)
        profile = numeric_profile(data, ProfileOptions(form=form))  # type: ignore[arg-type]
        x = np.concatenate((data[:200], rng.normal(size=200), [-10.0, 10.0]))
        assert np.array_equal(profile.cdf_counts(x, "right"), (data[:, None] <= x).sum(axis=0))
        assert np.array_equal(profile.cdf_counts(x, "left"), (data[:, None] < x).sum(axis=0))

    def test_integral_matches_quadrature(self, rng: np.random.Generator, form: str) -> None:
        data = np.round(rng.normal(size=300), 1)
        profile = numeric_profile(data, ProfileOptions(form=form))  # type: ignore[arg-type]
        s = np.sort(data)
        for x in (-0.73, 0.0, 0.41, 5.0):
            knots = np.concatenate(([s[0] - 1.0], s[s < x], [x]))
            area = sum(
                (np.searchsorted(s, a, "right") / s.size) * (b - a)
                for a, b in zip(knots[:-1], knots[1:], strict=True)
            )
            assert profile.integral(np.array([x]))[0] == pytest.approx(area, abs=1e-12)

    def test_quantile_is_the_inverse_cdf(self, rng: np.random.Generator, form: str) -> None:
        data = np.round(rng.normal(size=1000), 1)
        profile = numeric_profile(data, ProfileOptions(form=form))  # type: ignore[arg-type]
        t = np.array([0.001, 0.1, 0.5, 0.9, 1.0])
        expected = np.quantile(data, t, method="inverted_cdf")
        assert np.array_equal(profile.quantile(t), expected)


class TestBins:
    def test_decile_bins_hold_a_tenth_each(self, rng: np.random.Generator) -> None:
        profile = numeric_profile(rng.normal(size=10_000))
        edges, mass = profile.binned(10)
        assert edges.size == 9
        assert mass.sum() == pytest.approx(1.0)
        assert np.allclose(mass, 0.1, atol=1e-3)

    def test_ties_merge_bins(self) -> None:
        profile = numeric_profile([0.0] * 80 + [1.0, 2.0] * 10)
        edges, mass = profile.binned(10)
        assert edges.size < 9
        assert mass.sum() == pytest.approx(1.0)

    def test_other_bin_counts_are_derived(self, rng: np.random.Generator) -> None:
        profile = numeric_profile(rng.normal(size=4000))
        edges, mass = profile.binned(4)
        assert edges.size == 3
        assert np.allclose(mass, 0.25, atol=1e-3)


class TestClientInputs:
    def test_histogram_cdf_is_exact_at_edges_and_linear_inside(self) -> None:
        profile = numeric_profile_from_histogram([0.0, 1.0, 3.0], [10, 30])
        assert profile.n == 40
        at = profile.cdf_counts(np.array([-1.0, 0.0, 0.5, 1.0, 2.0, 3.0, 9.0]))
        assert at.tolist() == [0.0, 0.0, 5.0, 10.0, 25.0, 40.0, 40.0]
        assert profile.mean == pytest.approx((10 * 0.5 + 30 * 2.0) / 40)

    def test_quantiles_profile_with_atom(self) -> None:
        profile = numeric_profile_from_quantiles([0.0, 0.2, 0.5, 1.0], [0.0, 0.0, 1.0, 2.0], n=100)
        assert profile.cdf_counts(np.array([0.0]), "left")[0] == 0.0
        assert profile.cdf_counts(np.array([0.0]), "right")[0] == 20.0
        assert profile.quantile(np.array([0.5]))[0] == pytest.approx(1.0)

    @pytest.mark.parametrize(
        ("edges", "counts"),
        [([0.0, 1.0], [1, 2]), ([1.0, 0.0], [3]), ([0.0, 1.0], [0]), ([0.0, np.nan], [1])],
    )
    def test_bad_histograms_raise(self, edges: list[float], counts: list[int]) -> None:
        with pytest.raises(InvalidSample):
            numeric_profile_from_histogram(edges, counts)

    @pytest.mark.parametrize(
        ("probs", "qs"),
        [([0.1, 1.0], [0.0, 1.0]), ([0.0, 0.5, 1.0], [0.0, 2.0, 1.0]), ([0.0, 1.0], [1.0, 1.0])],
    )
    def test_bad_quantiles_raise(self, probs: list[float], qs: list[float]) -> None:
        with pytest.raises(InvalidSample):
            numeric_profile_from_quantiles(probs, qs, n=10)


def test_sketch_integral_matches_quadrature() -> None:
    profile = numeric_profile_from_histogram([0.0, 1.0, 3.0, 4.0], [10, 30, 60])

    def cdf(x: float) -> float:
        return float(profile.cdf_counts(np.array([x]))[0] / profile.total)

    for x in (0.5, 2.0, 3.5, 6.0):
        area, _ = integrate.quad(cdf, -1.0, x, points=[0.0, 1.0, 3.0, 4.0], limit=200)
        assert profile.integral(np.array([x]))[0] == pytest.approx(area, abs=1e-9)


@pytest.mark.parametrize("form", ["sorted", "counts"])
@pytest.mark.parametrize("step", [1, 2, 16, 128])
def test_coarse_index_bounds_hold(rng: np.random.Generator, form: str, step: int) -> None:
    data = np.round(rng.normal(size=5000), 2)  # ties inside the reference
    profile = numeric_profile(data, ProfileOptions(form=form))  # type: ignore[arg-type]
    index = profile.coarse_index(step)
    assert profile.coarse_index(step) is index  # built once
    assert np.array_equal(index.grid, profile.values[step - 1 :: step])
    x = np.concatenate((data[:300], rng.normal(size=300), index.grid[:50], [-9.0, 9.0]))
    k = np.searchsorted(index.grid, x, side="right")  # grid values at or below x
    at_or_below = profile.cdf_counts(x, "right")
    below = profile.cdf_counts(x, "left")
    assert np.all(index.low[k] <= at_or_below)
    assert np.all(at_or_below <= index.high[k])
    j = np.searchsorted(index.grid, x, side="left")  # grid values strictly below x
    assert np.all(index.low[j] <= below)
    assert np.all(below <= index.high[j])


def test_coarse_index_needs_a_step_form() -> None:
    profile = numeric_profile_from_histogram([0.0, 1.0, 2.0], [3, 4])
    with pytest.raises(ValueError, match="sorted or counts"):
        profile.coarse_index(4)


def test_sorted_quantile_equals_its_search_definition(rng: np.random.Generator) -> None:
    data = np.round(rng.normal(size=777), 1)
    profile = numeric_profile(data, ProfileOptions(form="sorted"))
    t = np.concatenate((rng.random(500), np.arange(778) / 777, [0.0, 1.0, -1.0, 2.0, np.nan]))
    k = np.searchsorted(np.arange(1.0, 778.0), t * 777, side="left")
    assert np.array_equal(profile.quantile(t), profile.values[np.clip(k, 0, 776)])


@pytest.mark.parametrize("decimals", [None, 1])
def test_integral_by_merging_equals_binary_search(
    rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch, decimals: int | None
) -> None:
    from retrigger.stats.profiles import numeric as numeric_module

    data, x = rng.normal(size=6000), np.sort(rng.normal(size=4000))
    if decimals is not None:
        data, x = np.round(data, decimals), np.round(x, decimals)
    for form in ("sorted", "counts"):
        profile = numeric_profile(data, ProfileOptions(form=form))  # type: ignore[arg-type]
        merged = profile.integral(x)
        monkeypatch.setattr(numeric_module, "_MERGE_MIN", 10**9)
        searched = profile.integral(x)
        monkeypatch.undo()
        assert np.array_equal(merged, searched)
