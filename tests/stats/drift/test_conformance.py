"""Every registered drift test, every example parameter set, every kind it supports:
same distribution -> no drift, shifted -> drift, empty or NaN-only -> InvalidSample,
deterministic, JSON-safe."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from retrigger.stats.drift import DriftParams, DriftStatus, DriftTest, drift_tests
from retrigger.stats.errors import InvalidSample
from retrigger.stats.samples import FeatureKind

CATEGORIES = np.array(["a", "b", "c", "d"])


def sample(kind: FeatureKind, n: int, shifted: bool, seed: int) -> Any:
    g = np.random.default_rng(seed)
    if kind is FeatureKind.NUMERIC:
        return g.normal(1.0 if shifted else 0.0, 1.0, size=n)
    if kind is FeatureKind.BOOLEAN:
        return g.random(n) < (0.6 if shifted else 0.3)
    probs = [0.1, 0.2, 0.3, 0.4] if shifted else [0.4, 0.3, 0.2, 0.1]
    return g.choice(CATEGORIES, size=n, p=probs)


def missing(kind: FeatureKind, n: int) -> Any:
    return np.full(n, np.nan) if kind is FeatureKind.NUMERIC else [None] * n


CASES = [
    pytest.param(drift_tests.get(key), params, kind, id=f"{key}-{i}-{kind.value}")
    for key in drift_tests.keys()
    for i, params in enumerate(drift_tests.get(key).examples())
    for kind in sorted(drift_tests.get(key).kinds)
]


@pytest.mark.parametrize(("cls", "params", "kind"), CASES)
class TestConformance:
    def test_same_distribution_is_no_drift(
        self, cls: type[DriftTest], params: DriftParams, kind: FeatureKind
    ) -> None:
        result = cls(params).evaluate(sample(kind, 3000, False, 1), sample(kind, 2000, False, 2))
        assert result.status is DriftStatus.NO_DRIFT, result.reason

    def test_shifted_distribution_is_drift(
        self, cls: type[DriftTest], params: DriftParams, kind: FeatureKind
    ) -> None:
        result = cls(params).evaluate(sample(kind, 3000, False, 1), sample(kind, 2000, True, 2))
        assert result.status is DriftStatus.DRIFT, result.reason
        assert result.drifted

    @pytest.mark.parametrize("side", ["reference", "current"])
    @pytest.mark.parametrize("n", [0, 50])
    def test_empty_or_missing_only_raises(
        self, cls: type[DriftTest], params: DriftParams, kind: FeatureKind, side: str, n: int
    ) -> None:
        good, bad = sample(kind, 500, False, 3), missing(kind, n)
        with pytest.raises(InvalidSample):
            cls(params).evaluate(bad, good) if side == "reference" else cls(params).evaluate(
                good, bad
            )

    def test_deterministic_and_json_safe(
        self, cls: type[DriftTest], params: DriftParams, kind: FeatureKind
    ) -> None:
        ref, cur = sample(kind, 800, False, 4), sample(kind, 700, True, 5)
        first, second = cls(params).evaluate(ref, cur), cls(params).evaluate(ref, cur)
        assert first == second
        text = json.dumps(first.as_dict(), allow_nan=False)
        assert json.loads(text)["test"] == cls.key

    def test_below_min_samples_is_insufficient(
        self, cls: type[DriftTest], params: DriftParams, kind: FeatureKind
    ) -> None:
        result = cls(params).evaluate(
            sample(kind, 500, False, 6), sample(kind, 20, True, 7), min_samples=100
        )
        assert result.status is DriftStatus.INSUFFICIENT_DATA
        assert (result.statistic, result.effect_size, result.drifted) == (None, None, False)

    def test_missing_values_are_reported(
        self, cls: type[DriftTest], params: DriftParams, kind: FeatureKind
    ) -> None:
        cur = list(sample(kind, 300, False, 8)) + list(missing(kind, 100))
        result = cls(params).evaluate(sample(kind, 500, False, 9), cur)
        assert result.n_cur == 300
        assert result.missing_share_cur == pytest.approx(0.25)


def test_every_test_has_a_numpy_docstring_with_formula_reference_and_example() -> None:
    for key in drift_tests.keys():
        doc = drift_tests.get(key).__doc__ or ""
        for section in ("Parameters", "Notes", "References", "Examples", ".. math::", ">>>"):
            assert section in doc, (key, section)


def test_wrong_kind_raises_invalid_sample() -> None:
    with pytest.raises(InvalidSample):
        drift_tests.create("ks").evaluate(["a"] * 200, ["b"] * 200)
    with pytest.raises(InvalidSample):
        drift_tests.create("z").evaluate(["a"] * 200, ["b"] * 200)
