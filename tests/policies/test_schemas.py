"""Policy documents: body cross-references, guards, target, templates' bounds, product specs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from retrigger.errors import InvalidConfig
from retrigger.policies import (
    StandalonePolicySpec,
    TemplatedPolicySpec,
    render_parameters,
    validate_product_policy,
    validate_template,
)
from retrigger.policies.combination import AtLeast, Combination

from .factories import product_body, rule, standalone_body, template_body


def _template_errors(body: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    with pytest.raises(InvalidConfig) as exc:
        validate_template(body)
    return {tuple(error["loc"]): error for error in exc.value.errors}


def _product_errors(body: dict[str, Any]) -> dict[tuple[Any, ...], dict[str, Any]]:
    with pytest.raises(InvalidConfig) as exc:
        validate_product_policy(body)
    return {tuple(error["loc"]): error for error in exc.value.errors}


class TestPolicyBody:
    def test_valid_template(self) -> None:
        spec = validate_template(template_body())
        assert [r.id for r in spec.rules][:2] == ["accuracy-drop", "feature-drift"]
        assert spec.combine is Combination.ANY

    def test_needs_rules(self) -> None:
        assert ("rules",) in _template_errors({"rules": []})

    def test_duplicate_rule_id(self) -> None:
        errors = _template_errors({"rules": [rule("staleness"), rule("schedule")]})
        assert errors[("rules", 1, "id")]["msg"] == "duplicate rule id 'r' (also rules[0])"

    def test_at_least(self) -> None:
        spec = validate_template(template_body(combine={"at_least": 2}))
        assert spec.combine == AtLeast(at_least=2)

    def test_at_least_above_rule_count(self) -> None:
        errors = _template_errors({"rules": [rule("staleness")], "combine": {"at_least": 2}})
        msg = "must not exceed the number of rules that are not inhibition sources (1)"
        assert errors[("combine", "at_least")]["msg"] == msg

    @pytest.mark.parametrize("combine", ["some", {"at_most": 1}, 3])
    def test_invalid_combine(self, combine: object) -> None:
        errors = _template_errors(template_body(combine=combine))
        assert all(loc[0] == "combine" for loc in errors)

    def test_inhibition_unknown_source(self) -> None:
        body = template_body(inhibit=[{"source": "nope", "targets": "*"}])
        assert _template_errors(body)[("inhibit", 0, "source")]["msg"] == "no rule 'nope'"

    def test_inhibition_unknown_target(self) -> None:
        body = template_body(inhibit=[{"source": "dq-alert", "targets": ["staleness", "nope"]}])
        assert ("inhibit", 0, "targets", 1) in _template_errors(body)

    def test_inhibition_of_itself(self) -> None:
        body = template_body(inhibit=[{"source": "dq-alert", "targets": ["dq-alert"]}])
        errors = _template_errors(body)
        assert errors[("inhibit", 0, "targets", 0)]["type"] == "self_inhibition"

    def test_one_inhibition_entry_per_source(self) -> None:
        entry = {"source": "dq-alert", "targets": "*"}
        errors = _template_errors(template_body(inhibit=[entry, entry]))
        assert errors[("inhibit", 1, "source")]["type"] == "duplicate_source"

    def test_unknown_top_level_field(self) -> None:
        assert ("rulez",) in _template_errors(template_body(rulez=[]))


class TestGuards:
    def test_defaults(self) -> None:
        guards = validate_template({"rules": [rule("staleness")]}).guards
        assert guards.cooldown == timedelta(days=1)
        assert (guards.max_runs, guards.period) == (None, timedelta(days=7))
        assert (guards.min_new_samples, guards.require_approval, guards.mode) == (
            0,
            False,
            "active",
        )
        assert guards.silences == []

    def test_cooldown_can_be_disabled(self) -> None:
        assert validate_template(template_body(guards={"cooldown": None})).guards.cooldown is None

    @pytest.mark.parametrize(
        ("guards", "loc"),
        [
            ({"cooldown": "0h"}, ("guards", "cooldown")),
            ({"max_runs": 0}, ("guards", "max_runs")),
            ({"period": "a week"}, ("guards", "period")),
            ({"min_new_samples": -1}, ("guards", "min_new_samples")),
            ({"mode": "dry"}, ("guards", "mode")),
            ({"require_approval": "maybe"}, ("guards", "require_approval")),
        ],
    )
    def test_invalid_guard(self, guards: dict[str, Any], loc: tuple[str, ...]) -> None:
        assert loc in _template_errors(template_body(guards=guards))

    def test_silence_normalised_to_utc(self) -> None:
        silence = {"start": "2025-12-24T00:00:00+01:00", "end": "2025-12-27T00:00:00+01:00"}
        body = template_body(guards={"silences": [{**silence, "reason": "holidays"}]})
        parsed = validate_template(body).guards.silences[0]
        assert parsed.start == datetime(2025, 12, 23, 23, tzinfo=UTC)
        assert parsed.covers(datetime(2025, 12, 25, tzinfo=UTC))

    def test_silence_end_before_start(self) -> None:
        silence = {"start": "2025-12-27T00:00:00Z", "end": "2025-12-24T00:00:00Z", "reason": "x"}
        errors = _template_errors(template_body(guards={"silences": [silence]}))
        assert errors[("guards", "silences", 0, "end")]["msg"] == "must be after start"

    def test_silence_needs_a_timezone(self) -> None:
        silence = {"start": "2025-12-24T00:00:00", "end": "2025-12-27T00:00:00Z", "reason": "x"}
        assert ("guards", "silences", 0, "start") in _template_errors(
            template_body(guards={"silences": [silence]})
        )

    def test_silence_needs_a_reason(self) -> None:
        silence = {"start": "2025-12-24T00:00:00Z", "end": "2025-12-27T00:00:00Z"}
        assert ("guards", "silences", 0, "reason") in _template_errors(
            template_body(guards={"silences": [silence]})
        )


class TestTarget:
    def test_known_placeholders_at_any_depth(self) -> None:
        params = {"conf": {"ids": ["{decision_id}", "{run_id}"], "why": "{reasons}"}, "n": 3}
        target = {"connection": "argo", "pipeline": "p", "parameters": params}
        assert validate_template(template_body(target=target)).target is not None

    def test_unknown_placeholder_names_the_parameter(self) -> None:
        params = {"conf": {"ids": ["{decision_id}", "{run}"]}}
        body = template_body(target={"connection": "argo", "pipeline": "p", "parameters": params})
        error = _template_errors(body)[("target", "parameters", "conf", "ids", 1)]
        assert error["type"] == "unknown_placeholder"
        assert "{run}" in error["msg"]

    @pytest.mark.parametrize("text", ["{product", "{product!r}", "{product:>10}", "{}", "{0}"])
    def test_malformed_placeholders(self, text: str) -> None:
        body = template_body(
            target={"connection": "argo", "pipeline": "p", "parameters": {"x": text}}
        )
        assert ("target", "parameters", "x") in _template_errors(body)

    def test_escaped_braces_are_literal(self) -> None:
        target = {"connection": "argo", "pipeline": "p", "parameters": {"j": '{{"a": "{run_id}"}}'}}
        spec = validate_template(template_body(target=target))
        assert spec.target is not None
        rendered = render_parameters(spec.target.parameters, {"run_id": "42"})
        assert rendered == {"j": '{"a": "42"}'}

    def test_connection_is_a_name(self) -> None:
        body = template_body(target={"connection": "Airflow Prod", "pipeline": "p"})
        assert ("target", "connection") in _template_errors(body)

    def test_pipeline_required(self) -> None:
        body = template_body(target={"connection": "airflow"})
        assert _template_errors(body)[("target", "pipeline")]["type"] == "missing"


class TestTemplateBounds:
    def test_bounds_normalised_to_canonical_values(self) -> None:
        body = template_body()
        body["overridable"]["rules"]["staleness"] = {"max_age": {"min": "168h", "max": "1440h"}}
        bounds = validate_template(body).overridable.model_dump(mode="json")
        assert bounds["rules"]["staleness"] == {"max_age": {"min": "7d", "max": "60d"}}

    def test_unknown_rule(self) -> None:
        body = template_body()
        body["overridable"]["rules"]["nope"] = "any"
        assert _template_errors(body)[("overridable", "rules", "nope")]["type"] == "unknown_rule"

    def test_unknown_field(self) -> None:
        body = template_body()
        body["overridable"]["rules"]["staleness"]["alpha"] = "any"
        error = _template_errors(body)[("overridable", "rules", "staleness", "alpha")]
        assert error["msg"] == "staleness rule 'staleness' has no overridable field 'alpha'"

    def test_id_and_type_cannot_be_overridable(self) -> None:
        body = template_body()
        body["overridable"]["rules"]["staleness"]["type"] = "any"
        assert ("overridable", "rules", "staleness", "type") in _template_errors(body)

    def test_template_value_outside_its_own_range(self) -> None:
        body = template_body()
        body["overridable"]["rules"]["staleness"]["max_age"] = {"max": "20d"}
        error = _template_errors(body)[("overridable", "rules", "staleness", "max_age")]
        assert error["type"] == "bound_excludes_template"

    def test_template_value_outside_its_own_allowed_values(self) -> None:
        body = template_body()
        body["overridable"]["guards"]["mode"] = {"allowed": ["shadow"]}
        assert ("overridable", "guards", "mode") in _template_errors(body)

    def test_min_above_max(self) -> None:
        body = template_body()
        body["overridable"]["guards"]["cooldown"] = {"min": "2d", "max": "1d"}
        assert ("overridable", "guards", "cooldown", "min") in _template_errors(body)

    def test_bound_value_of_wrong_type(self) -> None:
        body = template_body()
        body["overridable"]["rules"]["feature-drift"]["alpha"] = {"max": "lots"}
        assert ("overridable", "rules", "feature-drift", "alpha", "max") in _template_errors(body)

    def test_allowed_value_of_wrong_type(self) -> None:
        body = template_body()
        body["overridable"]["rules"]["feature-drift"]["test"] = {"allowed": ["ks", "magic"]}
        assert ("overridable", "rules", "feature-drift", "test", "allowed", 1) in _template_errors(
            body
        )

    def test_range_on_a_non_numeric_field(self) -> None:
        body = template_body()
        body["overridable"]["guards"]["mode"] = {"min": "active"}
        assert ("overridable", "guards", "mode", "min") in _template_errors(body)

    def test_unknown_detector_parameter(self) -> None:
        body = template_body()
        body["overridable"]["rules"]["error-stream"]["params"] = {"warm_start": "any"}
        assert ("overridable", "rules", "error-stream", "params", "warm_start") in (
            _template_errors(body)
        )

    def test_per_key_bounds_only_for_mappings(self) -> None:
        body = template_body()
        body["overridable"]["guards"]["cooldown"] = {"x": "any"}
        assert ("overridable", "guards", "cooldown") in _template_errors(body)

    def test_malformed_bound(self) -> None:
        body = template_body()
        body["overridable"]["guards"]["mode"] = "sometimes"
        assert ("overridable", "guards", "mode") in _template_errors(body)

    def test_allow_disable_unknown_rule(self) -> None:
        body = template_body()
        body["overridable"]["allow_disable"] = ["staleness", "nope"]
        assert ("overridable", "allow_disable", 1) in _template_errors(body)


class TestProductPolicySpec:
    def test_templated_with_text_reference(self) -> None:
        spec = validate_product_policy(product_body())
        assert isinstance(spec, TemplatedPolicySpec)
        assert (spec.template.name, spec.template.version) == ("tier-1-classifier", 3)
        assert str(spec.template) == "tier-1-classifier@3"

    def test_templated_with_mapping_reference(self) -> None:
        spec = validate_product_policy({"template": {"name": "t", "version": 1}})
        assert isinstance(spec, TemplatedPolicySpec)

    @pytest.mark.parametrize("ref", ["tier-1-classifier", "x@0", "x@latest", "@3", "X@1"])
    def test_invalid_template_reference(self, ref: str) -> None:
        assert any(loc[0] == "template" for loc in _product_errors({"template": ref}))

    def test_standalone(self) -> None:
        assert isinstance(validate_product_policy(standalone_body()), StandalonePolicySpec)

    def test_standalone_validated_like_a_template_body(self) -> None:
        body = standalone_body(combine={"at_least": 5})
        assert ("combine", "at_least") in _product_errors(body)

    def test_body_fields_rejected_next_to_a_template(self) -> None:
        errors = _product_errors(product_body(rules=[rule("staleness")], guards={}))
        assert errors[("rules",)]["type"] == "body_with_template"
        assert ("guards",) in errors

    def test_overrides_need_a_template(self) -> None:
        assert ("overrides",) in _product_errors(standalone_body(overrides={}))

    def test_override_values_are_typed_early(self) -> None:
        body = product_body(overrides={"rules": {"staleness": {"max_age": "soon"}}})
        assert ("overrides", "rules", "staleness", "max_age") in _product_errors(body)

    def test_unknown_override_field(self) -> None:
        body = product_body(overrides={"guards": {"cooldwn": "1d"}})
        assert ("overrides", "guards", "cooldwn") in _product_errors(body)

    def test_duplicate_extra_rule_ids(self) -> None:
        body = product_body(extra_rules=[rule("staleness"), rule("schedule")])
        assert ("extra_rules", 1, "id") in _product_errors(body)

    def test_disable_listed_twice(self) -> None:
        body = product_body(disable_rules=["weekly", "weekly"])
        assert ("disable_rules", 1) in _product_errors(body)
