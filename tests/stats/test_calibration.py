"""Calibration under no drift: false alarms at most alpha (per test, and per product with
Bonferroni over 20 features), within binomial noise."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from retrigger.stats.drift import DriftTest, drift_tests
from retrigger.stats.evaluate import DriftConfig, evaluate_features
from retrigger.stats.profiles import FeatureKind, Profile, build_profile, numeric_profile

ALPHA = 0.05


def _ceiling(trials: int, alpha: float = ALPHA) -> float:
    """Largest count consistent with a rate <= alpha (three binomial standard deviations)."""
    return trials * alpha + 3.0 * math.sqrt(trials * alpha * (1.0 - alpha))


Draw = Callable[[np.random.Generator, int], Any]

DRAWS: dict[str, tuple[FeatureKind, Draw]] = {
    "numeric": (FeatureKind.NUMERIC, lambda g, n: g.standard_t(5, size=n)),
    "categorical": (
        FeatureKind.CATEGORICAL,
        lambda g, n: g.choice(list("abcde"), size=n, p=[0.4, 0.3, 0.15, 0.1, 0.05]),
    ),
    "boolean": (FeatureKind.BOOLEAN, lambda g, n: g.random(n) < 0.3),
}


@pytest.mark.slow
@pytest.mark.parametrize(
    ("key", "kind_name", "n_ref", "n_cur"),
    [
        ("ks", "numeric", 300, 200),  # exact p-values
        ("ks", "numeric", 40_000, 700),  # asymptotic p-values
        ("chi2", "categorical", 2_000, 400),
        ("chi2", "boolean", 150, 120),
        ("z", "boolean", 3_000, 500),
    ],
)
def test_false_alarm_rate_per_feature(
    key: str, kind_name: str, n_ref: int, n_cur: int, make_rng: Callable[[int], np.random.Generator]
) -> None:
    kind, draw = DRAWS[kind_name]
    test: DriftTest = drift_tests.create(key, {"min_effect": 0.0})  # p-value alone decides
    g = make_rng(11)
    trials, alarms = 1500, 0
    fixed = build_profile(draw(g, n_ref), kind) if n_ref > 10_000 else None
    for _ in range(trials):
        reference = fixed if fixed is not None else build_profile(draw(g, n_ref), kind)
        alarms += test.evaluate(reference, draw(g, n_cur), alpha=ALPHA).drifted
    assert alarms <= _ceiling(trials), f"{alarms} false alarms in {trials}"


@pytest.mark.slow
def test_product_false_alarm_rate_with_bonferroni(
    make_rng: Callable[[int], np.random.Generator],
) -> None:
    g = make_rng(12)
    kinds = ["numeric"] * 10 + ["categorical"] * 5 + ["boolean"] * 5
    names = [f"f{i}" for i in range(len(kinds))]
    config = DriftConfig(min_effect=0.0, drift_share=0.05, alpha=ALPHA)  # one feature is enough
    trials, alarms = 400, 0
    for _ in range(trials):
        refs: dict[str, Profile] = {
            n: build_profile(DRAWS[k][1](g, 400), DRAWS[k][0])
            for n, k in zip(names, kinds, strict=True)
        }
        current = {n: DRAWS[k][1](g, 300) for n, k in zip(names, kinds, strict=True)}
        alarms += evaluate_features(refs, current, config).drifted
    assert alarms <= _ceiling(trials), f"{alarms} product-level false alarms in {trials}"


def test_uncorrected_family_would_alarm_often(
    make_rng: Callable[[int], np.random.Generator],
) -> None:
    """Sanity check of the setup: without correction, 20 features alarm far more than alpha."""
    g = make_rng(13)
    refs: dict[str, Profile] = {f"f{i}": numeric_profile(g.normal(size=300)) for i in range(20)}
    config = DriftConfig(min_effect=0.0, drift_share=0.05, correction="none")
    alarms = sum(
        evaluate_features(refs, {f"f{i}": g.normal(size=300) for i in range(20)}, config).drifted
        for _ in range(60)
    )
    assert alarms > 60 * 0.2
