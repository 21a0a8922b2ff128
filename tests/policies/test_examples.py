"""The shipped examples load, validate, resolve and fit their products' feature schemas."""

from __future__ import annotations

from pathlib import Path

import pytest

from retrigger.policies import check_against_schema, load_bundle

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "policies"

FEATURES = {
    "fraud-scorer": {
        "amount": "numeric",
        "merchant_category": "categorical",
        "card_age_days": "numeric",
        "country": "categorical",
        "is_card_present": "boolean",
    },
    "churn-predictor": {"tenure_months": "numeric", "plan": "categorical"},
    "demand-forecast": {"price": "numeric", "promo_depth": "numeric"},
    "search-ranking": {
        "query_length": "numeric",
        "query_language": "categorical",
        "device_type": "categorical",
    },
}


class TestExamples:
    def test_load_and_validate(self) -> None:
        bundle = load_bundle(EXAMPLES)
        assert set(bundle.templates) == {"tier-1-classifier", "tier-1-regressor"}
        assert set(bundle.products) == set(FEATURES)

    @pytest.mark.parametrize("product", sorted(FEATURES))
    def test_resolve_and_fit_feature_schema(self, product: str) -> None:
        effective = load_bundle(EXAMPLES).resolve(product)
        assert check_against_schema(effective.policy, FEATURES[product]) == []

    def test_fraud_scorer_overrides_within_bounds(self) -> None:
        effective = load_bundle(EXAMPLES).resolve("fraud-scorer")
        assert effective.provenance["rules[staleness].max_age"] == "override"
        assert effective.disabled_rules == ["error-stream"]
