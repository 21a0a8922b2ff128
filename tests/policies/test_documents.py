"""Whole documents: envelope validation, canonical form, fingerprints."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from retrigger.errors import InvalidConfig
from retrigger.policies import (
    API_VERSION,
    DocumentKind,
    canonical,
    fingerprint,
    validate_document,
    validate_product_policy,
    validate_template,
)

from .factories import product_body, rule, standalone_body, template_body


def _document(kind: str = "PolicyTemplate", **spec: Any) -> dict[str, Any]:
    body = template_body(**spec) if kind == "PolicyTemplate" else product_body(**spec)
    return {"kind": kind, "name": "tier-1-classifier", "spec": body}


class TestValidateDocument:
    def test_template_document(self) -> None:
        document = validate_document(_document())
        assert (document.kind, document.name) == (DocumentKind.POLICY_TEMPLATE, "tier-1-classifier")

    def test_product_document(self) -> None:
        document = validate_document({**_document("ProductPolicy"), "name": "fraud-scorer"})
        assert document.kind is DocumentKind.PRODUCT_POLICY

    def test_errors_start_at_the_document(self) -> None:
        document = _document()
        document["spec"]["rules"][1]["alpha"] = 3
        with pytest.raises(InvalidConfig) as exc:
            validate_document(document)
        assert exc.value.errors[0]["loc"] == ["spec", "rules", 1, "alpha"]
        assert exc.value.message.startswith("invalid policy template: spec.rules[1].alpha:")

    @pytest.mark.parametrize(
        ("change", "loc"),
        [
            ({"kind": "Policy"}, ["kind"]),
            ({"name": "Not A Slug"}, ["name"]),
            ({"api_version": "retrigger/v9"}, ["api_version"]),
            ({"metadata": {}}, ["metadata"]),
        ],
    )
    def test_envelope_errors(self, change: dict[str, Any], loc: list[str]) -> None:
        with pytest.raises(InvalidConfig) as exc:
            validate_document({**_document(), **change})
        assert exc.value.errors[0]["loc"] == loc


class TestCanonical:
    def test_is_idempotent(self) -> None:
        once = canonical(_document())
        assert canonical(once) == once

    def test_applies_defaults_and_canonical_durations(self) -> None:
        spec = canonical(_document(guards={"cooldown": "24h"}))["spec"]
        assert spec["guards"] == {
            "cooldown": "1d",
            "max_runs": None,
            "period": "7d",
            "min_new_samples": 0,
            "require_approval": False,
            "mode": "active",
            "silences": [],
        }
        assert canonical(_document())["api_version"] == API_VERSION

    def test_equivalent_spellings_are_equal(self) -> None:
        plain = _document()
        spelled = copy.deepcopy(plain)
        spelled["spec"]["rules"].reverse()
        spelled["spec"]["rules"][2]["max_age"] = "720h"  # staleness, 30d
        spelled["spec"]["rules"][5]["direction"] = "higher_is_better"  # accuracy-drop
        spelled["spec"]["guards"]["cooldown"] = "1d"
        spelled["spec"]["overridable"]["rules"]["staleness"]["max_age"]["max"] = "1440h"
        spelled["spec"]["combine"] = "any"
        assert canonical(spelled) == canonical(plain)

    def test_a_real_change_is_not_equal(self) -> None:
        changed = _document(guards={"cooldown": "2d"})
        assert canonical(changed) != canonical(_document())

    def test_product_overrides_stay_as_written(self) -> None:
        overrides = {"rules": {"staleness": {"max_age": "1080h"}}}
        spec = canonical(_document("ProductPolicy", overrides=overrides))["spec"]
        assert spec["overrides"] == {"rules": {"staleness": {"max_age": "45d"}}}
        assert spec["template"] == {"name": "tier-1-classifier", "version": 3}

    def test_unordered_lists_are_sorted(self) -> None:
        body = standalone_body(
            rules=[rule("data_drift", features=["b", "a"]), rule("staleness", id="a")]
        )
        spec = canonical({"kind": "ProductPolicy", "name": "p", "spec": body})["spec"]
        assert [r["id"] for r in spec["rules"]] == ["a", "r"]
        assert spec["rules"][1]["features"] == ["a", "b"]
        assert list(spec["rules"][0])[:2] == ["id", "type"]


class TestFingerprint:
    def test_same_policy_same_fingerprint(self) -> None:
        a = validate_template(template_body(guards={"cooldown": "24h"}))
        b = validate_template(template_body(guards={"cooldown": "1d"}))
        assert fingerprint(a) == fingerprint(b)

    def test_different_policy_different_fingerprint(self) -> None:
        a = validate_product_policy(product_body())
        b = validate_product_policy(product_body(disable_rules=["error-stream"]))
        assert fingerprint(a) != fingerprint(b)
