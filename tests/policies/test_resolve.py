"""Resolution: template + overrides within bounds, product-only rules, provenance."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from retrigger.errors import InvalidConfig
from retrigger.policies import (
    EffectivePolicy,
    flatten,
    resolve,
    validate_product_policy,
    validate_template,
)
from retrigger.policies.rules import ConceptDriftRule, DataDriftRule, StalenessRule

from .factories import product_body, rule, standalone_body, template_body

LABEL = "template:tier-1-classifier@3"


def _resolve(**product: Any) -> EffectivePolicy:
    return resolve(product_body(**product), template_body())


def _errors(**product: Any) -> dict[tuple[Any, ...], dict[str, Any]]:
    with pytest.raises(InvalidConfig) as exc:
        _resolve(**product)
    return {tuple(error["loc"]): error for error in exc.value.errors}


def _rule(effective: EffectivePolicy, rule_id: str) -> Any:
    found = effective.policy.rule(rule_id)
    assert found is not None
    return found


class TestResolveWithoutOverrides:
    def test_effective_policy_is_the_template(self) -> None:
        effective = _resolve()
        template = validate_template(template_body())
        assert effective.template == "tier-1-classifier@3"
        assert effective.policy.model_dump() == template.model_dump(exclude={"overridable"})

    def test_accepts_validated_models(self) -> None:
        product = validate_product_policy(product_body())
        effective = resolve(product, validate_template(template_body()))
        assert len(effective.policy.rules) == 6

    def test_templated_policy_needs_its_template(self) -> None:
        with pytest.raises(ValueError, match="tier-1-classifier@3"):
            resolve(product_body())


class TestResolveBounds:
    def test_override_within_bounds(self) -> None:
        effective = _resolve(overrides={"rules": {"staleness": {"max_age": "45d"}}})
        assert _rule(effective, "staleness").max_age == timedelta(days=45)

    def test_above_maximum_names_bound_and_path(self) -> None:
        errors = _errors(overrides={"rules": {"staleness": {"max_age": "120d"}}})
        error = errors[("overrides", "rules", "staleness", "max_age")]
        assert error["type"] == "bound_max"
        assert error["msg"] == (
            "rules[staleness].max_age = 120d is above the maximum 60d allowed by template "
            "tier-1-classifier@3"
        )

    def test_below_minimum(self) -> None:
        errors = _errors(overrides={"guards": {"cooldown": "1h"}})
        error = errors[("overrides", "guards", "cooldown")]
        assert (error["type"], "minimum 6h" in error["msg"]) == ("bound_min", True)

    def test_value_not_in_allowed(self) -> None:
        errors = _errors(overrides={"rules": {"feature-drift": {"test": "wasserstein"}}})
        error = errors[("overrides", "rules", "feature-drift", "test")]
        assert error["type"] == "bound_allowed"
        assert "allowed: auto, ks, psi" in error["msg"]

    def test_value_in_allowed(self) -> None:
        effective = _resolve(overrides={"rules": {"feature-drift": {"test": "psi"}}})
        assert _rule(effective, "feature-drift").test == "psi"

    def test_locked_field(self) -> None:
        errors = _errors(overrides={"rules": {"feature-drift": {"drift_share": 0.4}}})
        error = errors[("overrides", "rules", "feature-drift", "drift_share")]
        assert (
            error["msg"]
            == "rules[feature-drift].drift_share is locked by template tier-1-classifier@3"
        )

    def test_field_without_bound_is_not_overridable(self) -> None:
        errors = _errors(overrides={"rules": {"staleness": {"min_new_samples": 10}}})
        error = errors[("overrides", "rules", "staleness", "min_new_samples")]
        assert error["type"] == "not_overridable"
        assert "rules[staleness].min_new_samples is not overridable" in error["msg"]

    def test_rule_without_bounds_is_not_overridable(self) -> None:
        errors = _errors(overrides={"rules": {"accuracy-drop": {"min_samples": 10}}})
        assert errors[("overrides", "rules", "accuracy-drop", "min_samples")]["type"] == (
            "not_overridable"
        )

    def test_whole_rule_any(self) -> None:
        overrides = {"rules": {"weekly": {"cron": "0 4 * * sun", "timezone": "America/New_York"}}}
        weekly = _rule(_resolve(overrides=overrides), "weekly")
        assert (weekly.cron, weekly.timezone) == ("0 4 * * sun", "America/New_York")

    def test_field_of_another_rule_type(self) -> None:
        errors = _errors(overrides={"rules": {"weekly": {"max_age": "3d"}}})
        assert errors[("overrides", "rules", "weekly", "max_age")]["type"] == "unknown_field"

    def test_unknown_rule(self) -> None:
        errors = _errors(overrides={"rules": {"nope": {"window": "1d"}}})
        assert errors[("overrides", "rules", "nope")]["type"] == "unknown_rule"

    def test_detector_parameter_within_bound_merges_with_template(self) -> None:
        effective = _resolve(overrides={"rules": {"error-stream": {"params": {"delta": 0.005}}}})
        params = _rule(effective, "error-stream").params
        assert (params.delta, params.clock) == (0.005, 32)

    def test_detector_parameter_above_bound(self) -> None:
        errors = _errors(overrides={"rules": {"error-stream": {"params": {"delta": 0.05}}}})
        assert errors[("overrides", "rules", "error-stream", "params", "delta")]["type"] == (
            "bound_max"
        )

    def test_detector_parameter_without_bound(self) -> None:
        errors = _errors(overrides={"rules": {"error-stream": {"params": {"clock": 64}}}})
        assert ("overrides", "rules", "error-stream", "params", "clock") in errors

    def test_target_parameter_per_key(self) -> None:
        effective = _resolve(overrides={"target": {"parameters": {"dataset": "{product}_v2"}}})
        assert effective.policy.target is not None
        assert effective.policy.target.parameters == {
            "product": "{product}",
            "run": "{run_id}",
            "dataset": "{product}_v2",
        }

    def test_target_parameter_not_declared(self) -> None:
        errors = _errors(overrides={"target": {"parameters": {"run": "x"}}})
        assert ("overrides", "target", "parameters", "run") in errors

    def test_combine_not_overridable(self) -> None:
        assert ("overrides", "combine") in _errors(overrides={"combine": "all"})

    def test_every_violation_is_reported(self) -> None:
        errors = _errors(
            overrides={
                "rules": {
                    "staleness": {"max_age": "1d"},
                    "error-stream": {"params": {"delta": 0.001}},
                },
                "guards": {"require_approval": True},
            },
            disable_rules=["staleness", "error-stream"],
        )
        assert set(errors) == {
            ("disable_rules", 0),
            ("overrides", "rules", "error-stream"),
            ("overrides", "rules", "staleness", "max_age"),
            ("overrides", "guards", "require_approval"),
        }
        assert errors[("overrides", "rules", "error-stream")]["type"] == "rule_disabled"

    def test_merged_rule_validated_with_override_path(self) -> None:
        body = template_body()
        body["overridable"]["rules"]["accuracy-drop"] = {"m": "any"}
        with pytest.raises(InvalidConfig) as exc:
            resolve(product_body(overrides={"rules": {"accuracy-drop": {"m": 6}}}), body)
        assert exc.value.errors == [
            {
                "loc": ["overrides", "rules", "accuracy-drop", "m"],
                "msg": "must not exceed n (5)",
                "type": "m_greater_than_n",
            }
        ]


class TestResolveRules:
    def test_disable_allowed_rule(self) -> None:
        effective = _resolve(disable_rules=["error-stream"])
        assert effective.disabled_rules == ["error-stream"]
        assert effective.policy.rule("error-stream") is None

    def test_disable_not_allowed(self) -> None:
        errors = _errors(disable_rules=["staleness"])
        assert errors[("disable_rules", 0)]["msg"] == (
            "template tier-1-classifier@3 does not allow disabling rule 'staleness'"
        )

    def test_disable_unknown_rule(self) -> None:
        assert _errors(disable_rules=["nope"])[("disable_rules", 0)]["type"] == "unknown_rule"

    def test_disabling_removes_it_from_inhibitions(self) -> None:
        body = template_body(inhibit=[{"source": "dq-alert", "targets": ["error-stream"]}])
        effective = resolve(product_body(disable_rules=["error-stream"]), body)
        assert effective.policy.inhibit == []

    def test_disabling_below_at_least(self) -> None:
        body = template_body(combine={"at_least": 5})  # every rule but the inhibition source
        with pytest.raises(InvalidConfig) as exc:
            resolve(product_body(disable_rules=["error-stream"]), body)
        assert exc.value.errors[0]["loc"] == ["disable_rules"]

    def test_extra_rules(self) -> None:
        extra = rule("alert", id="fraud-spike", matchers=[{"name": "alertname", "value": "F"}])
        effective = _resolve(extra_rules=[extra])
        assert [r.id for r in effective.policy.rules][-1] == "fraud-spike"

    def test_extra_rules_not_allowed(self) -> None:
        body = template_body()
        body["overridable"]["allow_extra_rules"] = False
        with pytest.raises(InvalidConfig) as exc:
            resolve(product_body(extra_rules=[rule("staleness")]), body)
        assert exc.value.errors[0]["loc"] == ["extra_rules"]

    def test_extra_rule_id_clashing_with_template(self) -> None:
        errors = _errors(extra_rules=[rule("staleness", id="weekly")])
        assert errors[("extra_rules", 0, "id")]["type"] == "duplicate_rule_id"

    def test_extra_inhibit_needs_permission(self) -> None:
        errors = _errors(extra_inhibit=[{"source": "dq-alert", "targets": "*"}])
        assert ("extra_inhibit",) in errors

    def test_extra_inhibit_referencing_unknown_rule(self) -> None:
        body = template_body(inhibit=[])
        body["overridable"]["allow_extra_inhibit"] = True
        with pytest.raises(InvalidConfig) as exc:
            resolve(product_body(extra_inhibit=[{"source": "nope", "targets": "*"}]), body)
        assert exc.value.errors[0]["loc"] == ["extra_inhibit", 0, "source"]

    def test_switching_detector_drops_template_params(self) -> None:
        body = template_body()
        body["rules"][2]["params"] = {"delta": 0.001}
        body["overridable"]["rules"]["error-stream"]["detector"] = "any"
        effective = resolve(
            product_body(overrides={"rules": {"error-stream": {"detector": "ddm"}}}), body
        )
        stream = _rule(effective, "error-stream")
        assert isinstance(stream, ConceptDriftRule)
        assert stream.params.model_dump() == {
            "warm_start": 30,
            "warning_threshold": 2.0,
            "drift_threshold": 3.0,
        }


class TestProvenance:
    def test_labels_every_value(self) -> None:
        extra = rule("staleness", id="extra", max_age="90d")
        effective = _resolve(
            overrides={"rules": {"staleness": {"max_age": "45d"}}, "guards": {"mode": "shadow"}},
            extra_rules=[extra],
        )
        provenance = effective.provenance
        assert provenance["rules[staleness].max_age"] == "override"
        assert provenance["rules[feature-drift].alpha"] == LABEL
        assert provenance["rules[feature-drift].correction"] == "default"
        assert provenance["guards.mode"] == "override"
        assert provenance["guards.cooldown"] == LABEL
        assert provenance["guards.period"] == "default"
        assert provenance["rules[extra].max_age"] == "policy"
        assert provenance["rules[extra].min_new_samples"] == "default"
        assert provenance["target.parameters.run"] == LABEL

    def test_inferred_direction_is_default(self) -> None:
        assert _resolve().provenance["rules[accuracy-drop].direction"] == "default"

    def test_detector_parameters_per_key(self) -> None:
        overrides = {"rules": {"error-stream": {"params": {"delta": 0.005}}}}
        provenance = _resolve(overrides=overrides).provenance
        assert provenance["rules[error-stream].params.delta"] == "override"
        assert provenance["rules[error-stream].params.clock"] == "default"

    def test_covers_every_leaf_of_the_effective_policy(self) -> None:
        effective = _resolve()
        assert set(effective.provenance) == set(flatten(effective.policy.model_dump(mode="json")))


class TestResolveStandalone:
    def test_standalone_is_its_own_effective_policy(self) -> None:
        effective = resolve(standalone_body())
        assert effective.template is None
        staleness = _rule(effective, "staleness")
        assert isinstance(staleness, StalenessRule)
        assert effective.provenance["rules[staleness].max_age"] == "policy"
        assert effective.provenance["guards.cooldown"] == "default"

    def test_standalone_takes_no_template(self) -> None:
        with pytest.raises(ValueError, match="standalone"):
            resolve(standalone_body(), template_body())

    def test_invalid_mapping_reports_product_paths(self) -> None:
        with pytest.raises(InvalidConfig) as exc:
            resolve(standalone_body(rules=[rule("data_drift", alpha=2)]))
        assert exc.value.errors[0]["loc"] == ["rules", 0, "alpha"]
        assert isinstance(
            resolve(standalone_body(rules=[rule("data_drift")])).policy.rules[0], DataDriftRule
        )
