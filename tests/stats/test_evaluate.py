"""Product-level evaluation: per-feature tests, correction, weights, verdict, edge cases."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from retrigger.stats.drift import DriftStatus
from retrigger.stats.errors import InvalidConfig, InvalidSample, UnknownPlugin
from retrigger.stats.evaluate import DriftConfig, check_config, evaluate_features
from retrigger.stats.profiles import FeatureKind, Profile, build_profile


@pytest.fixture
def references(rng: np.random.Generator) -> dict[str, Profile]:
    return {
        "amount": build_profile(rng.lognormal(size=5000), FeatureKind.NUMERIC),
        "age": build_profile(rng.normal(40, 10, size=600), FeatureKind.NUMERIC),
        "country": build_profile(
            rng.choice(["fr", "de", "us"], size=5000), FeatureKind.CATEGORICAL
        ),
        "is_new": build_profile(rng.random(5000) < 0.2, FeatureKind.BOOLEAN),
    }


def _current(rng: np.random.Generator, drift: bool) -> dict[str, Any]:
    s = 1.0 if drift else 0.0
    return {
        "amount": rng.lognormal(s, 1.0, size=3000),
        "age": rng.normal(40 + 10 * s, 10, size=400),
        "country": rng.choice(["fr", "de", "us"], size=3000, p=[0.6, 0.3, 0.1] if drift else None),
        "is_new": rng.random(3000) < (0.5 if drift else 0.2),
    }


def test_no_drift(references: dict[str, Profile], rng: np.random.Generator) -> None:
    result = evaluate_features(references, _current(rng, False))
    assert result.status is DriftStatus.NO_DRIFT
    assert result.drifted_features == []
    assert result.n_decided == 4
    json.dumps(result.as_dict(), allow_nan=False)


def test_drift_with_reasons_and_choices(
    references: dict[str, Profile], rng: np.random.Generator
) -> None:
    result = evaluate_features(references, _current(rng, True))
    assert result.status is DriftStatus.DRIFT
    assert result.drifted_features == ["amount", "age", "country", "is_new"]
    tests = {name: f.test for name, f in result.features.items()}
    assert tests == {
        "amount": "wasserstein",
        "age": "ks",
        "country": "jensen_shannon",
        "is_new": "z",
    }
    assert all(f.chosen_because.startswith("auto:") for f in result.features.values())


def test_bonferroni_is_applied_across_p_value_tests(
    references: dict[str, Profile], rng: np.random.Generator
) -> None:
    result = evaluate_features(references, _current(rng, False))
    age, is_new = result.features["age"].result, result.features["is_new"].result
    assert age.p_value is not None
    assert is_new.p_value is not None
    assert age.p_value_adjusted == pytest.approx(min(1.0, 2 * age.p_value))
    uncorrected = evaluate_features(
        references, _current(rng, False), DriftConfig(correction="none")
    )
    r = uncorrected.features["age"].result
    assert r.p_value_adjusted == r.p_value


def test_weights_and_share(references: dict[str, Profile], rng: np.random.Generator) -> None:
    current = _current(rng, False)
    current["amount"] = rng.lognormal(1.0, 1.0, size=3000)
    light = evaluate_features(
        references,
        current,
        DriftConfig(weights={"amount": 0.1, "age": 1, "country": 1, "is_new": 1}),
    )
    heavy = evaluate_features(
        references,
        current,
        DriftConfig(weights={"amount": 5.0, "age": 1, "country": 1, "is_new": 1}),
    )
    assert light.drifted_features == heavy.drifted_features == ["amount"]
    assert light.share == pytest.approx(0.1 / 3.1)
    assert heavy.status is DriftStatus.DRIFT
    assert light.status is DriftStatus.NO_DRIFT


def test_missing_and_empty_columns_are_insufficient(
    references: dict[str, Profile], rng: np.random.Generator
) -> None:
    current = _current(rng, False)
    del current["age"]
    current["country"] = [None] * 50
    result = evaluate_features(references, current)
    assert result.features["age"].result.status is DriftStatus.INSUFFICIENT_DATA
    country = result.features["country"].result
    assert country.status is DriftStatus.INSUFFICIENT_DATA
    assert country.missing_share_cur == 1.0
    assert result.n_decided == 2


def test_nothing_decidable_is_insufficient(references: dict[str, Profile]) -> None:
    result = evaluate_features(references, {})
    assert result.status is DriftStatus.INSUFFICIENT_DATA


def test_small_windows_are_insufficient(
    references: dict[str, Profile], rng: np.random.Generator
) -> None:
    current = {k: v[:50] for k, v in _current(rng, True).items()}
    result = evaluate_features(references, current)
    assert all(f.result.status is DriftStatus.INSUFFICIENT_DATA for f in result.features.values())
    assert result.status is DriftStatus.INSUFFICIENT_DATA


def test_named_test_falls_back_for_other_kinds(
    references: dict[str, Profile], rng: np.random.Generator
) -> None:
    result = evaluate_features(
        references, _current(rng, False), DriftConfig(test="ks", params={"ks": {"method": "asymp"}})
    )
    assert result.features["amount"].test == "ks"
    assert result.features["amount"].result.details["p_method"] == "asymptotic"
    assert result.features["country"].test == "jensen_shannon"
    assert "does not apply" in result.features["country"].chosen_because


def test_min_effect_override_and_feature_tests(
    references: dict[str, Profile], rng: np.random.Generator
) -> None:
    cfg = DriftConfig(
        min_effect=0.0, feature_tests={"amount": "psi"}, params={"psi": {"min_effect": 0.5}}
    )
    result = evaluate_features(references, _current(rng, False), cfg)
    assert result.features["amount"].test == "psi"
    assert result.features["amount"].result.min_effect == 0.5
    assert result.features["age"].result.min_effect == 0.0


def test_wrong_kind_names_the_feature(
    references: dict[str, Profile], rng: np.random.Generator
) -> None:
    current = _current(rng, False)
    current["amount"] = ["x"] * 300
    with pytest.raises(InvalidSample) as info:
        evaluate_features(references, current)
    assert info.value.errors == [
        {"loc": ["features", "amount"], "msg": info.value.errors[0]["msg"]}
    ]


def test_config_errors() -> None:
    with pytest.raises(UnknownPlugin):
        check_config(DriftConfig(test="anderson"))
    with pytest.raises(InvalidConfig):
        check_config(DriftConfig(params={"psi": {"bins": 0}}))
    with pytest.raises(ValueError, match="alpha"):
        DriftConfig(alpha=1.5)
