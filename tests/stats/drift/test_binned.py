"""PSI, Jensen-Shannon and Hellinger against scipy and their textbook formulas; golden values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.spatial import distance

from retrigger.stats.drift.hellinger import HellingerTest
from retrigger.stats.drift.jensen_shannon import JensenShannonTest
from retrigger.stats.drift.psi import PSITest
from retrigger.stats.profiles import numeric_profile


def _cells(ref: np.ndarray, cur: np.ndarray, bins: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Reference decile bins by hand (inverse-CDF quantiles, bins [e_k-1, e_k))."""
    edges = np.unique(np.quantile(ref, np.arange(1, bins) / bins, method="inverted_cdf"))
    p = np.bincount(np.searchsorted(edges, ref, side="right"), minlength=edges.size + 1)
    q = np.bincount(np.searchsorted(edges, cur, side="right"), minlength=edges.size + 1)
    return p / p.sum(), q / q.sum()


@pytest.fixture
def numeric_pair(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    return rng.normal(size=3000), rng.normal(0.3, 1.2, size=2000)


class TestPSI:
    def test_matches_formula_on_deciles(self, numeric_pair: tuple[np.ndarray, np.ndarray]) -> None:
        ref, cur = numeric_pair
        p, q = _cells(ref, cur)
        p, q = np.maximum(p, 1e-4), np.maximum(q, 1e-4)
        expected = float(np.sum((q - p) * np.log(q / p)))
        assert PSITest().evaluate(numeric_profile(ref), cur).statistic == pytest.approx(
            expected, rel=1e-12
        )

    def test_empty_cell_uses_epsilon(self) -> None:
        result = PSITest().evaluate(["a"] * 100, ["a"] * 50 + ["b"] * 50)
        expected = (0.5 - 1.0) * np.log(0.5 / 1.0) + (0.5 - 1e-4) * np.log(0.5 / 1e-4)
        assert result.statistic == pytest.approx(expected, rel=1e-12)

    def test_golden_value(self) -> None:
        result = PSITest().evaluate(["a"] * 60 + ["b"] * 40, ["a"] * 40 + ["b"] * 60)
        # 2 * (0.6 - 0.4) * ln(0.6 / 0.4): moderate, below the 0.2 default
        assert result.statistic == pytest.approx(0.4 * np.log(1.5), rel=1e-12)
        assert not result.drifted


class TestJensenShannon:
    def test_matches_scipy_numeric(self, numeric_pair: tuple[np.ndarray, np.ndarray]) -> None:
        ref, cur = numeric_pair
        p, q = _cells(ref, cur)
        result = JensenShannonTest().evaluate(numeric_profile(ref), cur)
        assert result.statistic == pytest.approx(distance.jensenshannon(p, q, base=2), rel=1e-12)

    def test_matches_scipy_categorical_with_unseen(self) -> None:
        ref = ["a"] * 70 + ["b"] * 30
        cur = ["a"] * 50 + ["c"] * 50
        expected = distance.jensenshannon([0.7, 0.3, 0.0], [0.5, 0.0, 0.5], base=2)
        assert JensenShannonTest().evaluate(ref, cur).statistic == pytest.approx(
            expected, rel=1e-12
        )

    def test_golden_value(self) -> None:
        result = JensenShannonTest().evaluate(["a"] * 100, ["a"] * 50 + ["b"] * 50)
        # m = (3/4, 1/4): JS^2 = 1/2 log2(4/3) + 1/2 (1/2 log2(2/3) + 1/2 log2(2))
        js2 = 0.5 * np.log2(4 / 3) + 0.5 * (0.5 * np.log2(2 / 3) + 0.5 * np.log2(2))
        assert result.statistic == pytest.approx(np.sqrt(js2), rel=1e-12)


class TestHellinger:
    def test_matches_formula(self, numeric_pair: tuple[np.ndarray, np.ndarray]) -> None:
        ref, cur = numeric_pair
        p, q = _cells(ref, cur)
        expected = np.linalg.norm(np.sqrt(p) - np.sqrt(q)) / np.sqrt(2)
        result = HellingerTest().evaluate(numeric_profile(ref), cur)
        assert result.statistic == pytest.approx(expected, rel=1e-9)

    def test_golden_value(self) -> None:
        result = HellingerTest().evaluate(["a"] * 100, ["b"] * 100)
        assert result.statistic == 1.0
        assert result.drifted


def test_bins_parameter_changes_the_cells(numeric_pair: tuple[np.ndarray, np.ndarray]) -> None:
    ref, cur = numeric_pair
    assert PSITest({"bins": 20}).evaluate(ref, cur).details["cells"] == 20
    assert PSITest().evaluate(ref, cur).details["cells"] == 10
