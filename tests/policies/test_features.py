"""Data-drift rules against a product's feature schema."""

from __future__ import annotations

from typing import Any

from retrigger.policies import check_against_schema, validate_template

from .factories import rule

SCHEMA = {"age": "numeric", "country": "categorical", "is_new": "boolean"}


def _check(*rules: dict[str, Any], schema: dict[str, str] = SCHEMA) -> list[dict[str, Any]]:
    return check_against_schema(validate_template({"rules": list(rules)}), schema)


class TestCheckAgainstSchema:
    def test_matching_policy_has_no_errors(self) -> None:
        assert (
            _check(rule("data_drift", features=["age"], test="ks"), rule("staleness", id="s")) == []
        )

    def test_unknown_feature(self) -> None:
        errors = _check(rule("staleness", id="s"), rule("data_drift", features=["age", "income"]))
        assert errors == [
            {
                "loc": ["rules", 1, "features", 1],
                "msg": "unknown feature 'income': not in the product's feature schema",
                "type": "unknown_feature",
            }
        ]

    def test_chi2_on_numeric_feature(self) -> None:
        (error,) = _check(rule("data_drift", features=["age", "country"], test="chi2"))
        assert error["loc"] == ["rules", 0, "test"]
        assert error["msg"] == "chi2 only tests boolean, categorical features; not age (numeric)"

    def test_star_checks_every_schema_feature(self) -> None:
        (error,) = _check(rule("data_drift", test="ks"))
        assert "country (categorical), is_new (boolean)" in error["msg"]

    def test_z_test_needs_boolean(self) -> None:
        assert _check(rule("data_drift", features=["is_new"], test="z")) == []
        assert _check(rule("data_drift", features=["country"], test="z"))[0]["type"] == (
            "test_incompatible"
        )

    def test_auto_and_binned_distances_accept_every_kind(self) -> None:
        for test in ("auto", "psi", "jensen_shannon", "hellinger"):
            assert _check(rule("data_drift", test=test)) == []

    def test_star_on_an_empty_schema(self) -> None:
        (error,) = _check(rule("data_drift"), schema={})
        assert (error["loc"], error["type"]) == (["rules", 0, "features"], "no_features")
