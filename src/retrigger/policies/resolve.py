"""Resolve a product policy into its effective policy: template values, overrides checked
against the template's bounds, product-only rules, and the provenance of every value.

Provenance labels: ``template:<name>@<version>`` (written in the template), ``override``
(written in the product's ``overrides``), ``policy`` (written in a standalone policy or in
``extra_rules`` / ``extra_inhibit``), ``default`` (nobody wrote it).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any, Final

from pydantic import BaseModel, Field, ValidationError

from retrigger.policies.bound_checks import (
    Slot,
    bound_problem,
    combine_slot,
    field_slot,
    key_slot,
    section_field_bound,
)
from retrigger.policies.detectors import PARAMS_BY_DETECTOR, Detector
from retrigger.policies.diff import flatten, join_path
from retrigger.policies.fields import SpecModel
from retrigger.policies.guards import Guards
from retrigger.policies.problems import (
    Loc,
    Problem,
    errors_from,
    problem,
    raise_invalid,
    validate_as,
)
from retrigger.policies.rules import ConceptDriftRule, RuleModel
from retrigger.policies.schemas import (
    PRODUCT_POLICY_ADAPTER,
    PolicyBody,
    ProductPolicy,
    StandalonePolicySpec,
    TemplatedPolicySpec,
    TemplateSpec,
)
from retrigger.policies.target import Target

__all__ = ["DEFAULT", "OVERRIDE", "POLICY", "EffectivePolicy", "resolve"]

OVERRIDE: Final = "override"
POLICY: Final = "policy"
DEFAULT: Final = "default"
_WHAT: Final = "product policy"


class EffectivePolicy(BaseModel):
    """The policy an evaluation applies, and where each of its values comes from."""

    template: str | None = None
    """The inherited template version (``name@version``), ``null`` for standalone policies."""
    policy: PolicyBody
    """The merged, validated policy."""
    provenance: dict[str, str]
    """Per value path (``rules[staleness].max_age``): template label, override, policy, default."""
    disabled_rules: list[str] = Field(default_factory=list)
    """Template rules the product switched off."""


def resolve(
    policy: ProductPolicy | Mapping[str, Any],
    template: TemplateSpec | Mapping[str, Any] | None = None,
) -> EffectivePolicy:
    """Merge a product policy with the template version it references (``None`` if standalone).

    Raises :class:`~retrigger.errors.InvalidConfig` with errors located in the product policy
    (``["overrides", "rules", "staleness", "max_age"]``) when a bound is violated or the merged
    policy is invalid. Passing the documents as submitted (not with defaults filled in) lets
    provenance tell ``default`` from written values.
    """
    product = (
        policy
        if isinstance(policy, TemplatedPolicySpec | StandalonePolicySpec)
        else validate_as(PRODUCT_POLICY_ADAPTER, policy, what=_WHAT)
    )
    if isinstance(product, StandalonePolicySpec):
        if template is not None:
            raise ValueError("a standalone policy references no template")
        written = product.model_dump(mode="json", exclude_unset=True)
        body = PolicyBody.model_validate(written)
        return EffectivePolicy(policy=body, provenance=_provenance(body, written, POLICY))
    if template is None:
        raise ValueError(f"policy inherits {product.template}: pass that template's body")
    spec = (
        template
        if isinstance(template, TemplateSpec)
        else validate_as(TemplateSpec, template, what=f"template {product.template}")
    )
    return _Resolver(product, spec).resolve()


def _provenance(
    body: PolicyBody,
    written: Mapping[str, Any],
    label: str,
    overridden: Collection[str] = (),
    product_only: Collection[str] = (),
) -> dict[str, str]:
    """Label every leaf of ``body``; ``written`` is what was merged before defaults applied."""
    written_paths = set(flatten(written))
    labels: dict[str, str] = {}
    for path in flatten(body.model_dump(mode="json")):
        if path in overridden:
            labels[path] = OVERRIDE
        elif path in product_only:
            labels[path] = POLICY
        elif path in written_paths:
            labels[path] = label
        else:
            labels[path] = DEFAULT
    return labels


class _Resolver:
    """One resolution: collects every bound violation before failing."""

    def __init__(self, product: TemplatedPolicySpec, template: TemplateSpec) -> None:
        self.product = product
        self.template = template
        self.ref = str(product.template)
        self.bounds = template.overridable
        self.overrides = product.overrides
        self.problems: list[Problem] = []
        self.written = template.model_dump(mode="json", exclude_unset=True, exclude={"overridable"})

    def resolve(self) -> EffectivePolicy:
        disabled = self._disabled()
        rules, origins = self._rules(disabled)
        inhibit, kept = self._inhibit(disabled)
        merged: dict[str, Any] = {"rules": rules, "inhibit": inhibit}
        description = self.product.description or self.template.description
        if description is not None:
            merged["description"] = description
        merged["guards"] = self._section(
            "guards", Guards, self.template.guards, self.bounds.guards, self.overrides.guards
        )
        target = self._section(
            "target", Target, self.template.target, self.bounds.target, self.overrides.target
        )
        if target:
            merged["target"] = target
        combine = self._combine()
        if combine is not None:
            merged["combine"] = combine
        if self.problems:
            raise_invalid(_WHAT, [problem(loc, type_, msg) for loc, type_, msg in self.problems])
        try:
            body = PolicyBody.model_validate(merged)
        except ValidationError as exc:
            errors = errors_from(exc, merged)
            for error in errors:
                error["loc"] = list(self._product_loc(tuple(error["loc"]), origins, kept))
            raise_invalid(_WHAT, errors)
        overridden = self._override_paths()
        product_only = self._product_paths()
        provenance = _provenance(body, merged, f"template:{self.ref}", overridden, product_only)
        return EffectivePolicy(
            template=self.ref, policy=body, provenance=provenance, disabled_rules=sorted(disabled)
        )

    # -- rules ---------------------------------------------------------------------------

    def _disabled(self) -> set[str]:
        ids = {rule.id for rule in self.template.rules}
        allowed = self.bounds.allow_disable
        disabled: set[str] = set()
        for index, rule_id in enumerate(self.product.disable_rules):
            loc: Loc = ("disable_rules", index)
            if rule_id not in ids:
                self._problem(loc, "unknown_rule", f"template {self.ref} has no rule {rule_id!r}")
            elif allowed != "*" and rule_id not in allowed:
                message = f"template {self.ref} does not allow disabling rule {rule_id!r}"
                self._problem(loc, "disable_not_allowed", message)
            else:
                disabled.add(rule_id)
        return disabled

    def _rules(self, disabled: set[str]) -> tuple[list[dict[str, Any]], list[tuple[str, Any]]]:
        rules: list[dict[str, Any]] = []
        origins: list[tuple[str, Any]] = []
        ids = {rule.id for rule in self.template.rules}
        for rule_id in self.overrides.rules:
            loc: Loc = ("overrides", "rules", rule_id)
            if rule_id not in ids:
                self._problem(loc, "unknown_rule", f"template {self.ref} has no rule {rule_id!r}")
            elif rule_id in disabled:
                self._problem(loc, "rule_disabled", f"rule {rule_id!r} is in disable_rules")
        for rule, written in zip(self.template.rules, self.written["rules"], strict=True):
            if rule.id in disabled:
                continue
            rules.append(self._rule(rule, written))
            origins.append(("template", rule.id))
        if self.product.extra_rules and not self.bounds.allow_extra_rules:
            message = f"template {self.ref} does not allow extra rules"
            self._problem(("extra_rules",), "extra_rules_not_allowed", message)
        for index, rule in enumerate(self.product.extra_rules):
            if rule.id in ids:
                message = f"rule id {rule.id!r} is already used by template {self.ref}"
                self._problem(("extra_rules", index, "id"), "duplicate_rule_id", message)
            rules.append(rule.model_dump(mode="json", exclude_unset=True))
            origins.append(("extra", index))
        return rules, origins

    def _rule(self, rule: RuleModel, written: dict[str, Any]) -> dict[str, Any]:
        override = self.overrides.rules.get(rule.id)
        if override is None:
            return written
        section = self.bounds.rules.get(rule.id)
        merged = self._section_fields(
            rule, type(rule), written, section, override, ("rules", rule.id), f"rules[{rule.id}]"
        )
        if (
            isinstance(rule, ConceptDriftRule)
            and merged.get("detector", rule.detector) != rule.detector
        ):
            if "params" not in override.model_fields_set:
                merged.pop("params", None)  # the template's params belong to another detector
        return merged

    def _inhibit(self, disabled: set[str]) -> tuple[list[dict[str, Any]], int]:
        entries: list[dict[str, Any]] = []
        for entry in self.template.inhibit:
            if entry.source in disabled:
                continue
            dumped = entry.model_dump(mode="json")
            if isinstance(entry.targets, list):
                dumped["targets"] = [t for t in entry.targets if t not in disabled]
                if not dumped["targets"]:
                    continue
            entries.append(dumped)
        kept = len(entries)
        if self.product.extra_inhibit and not self.bounds.allow_extra_inhibit:
            message = f"template {self.ref} does not allow extra inhibitions"
            self._problem(("extra_inhibit",), "extra_inhibit_not_allowed", message)
        entries.extend(entry.model_dump(mode="json") for entry in self.product.extra_inhibit)
        return entries, kept

    # -- sections ------------------------------------------------------------------------

    def _section(
        self, name: str, owner: type[SpecModel], instance: Any, bounds: Any, override: BaseModel
    ) -> dict[str, Any]:
        written = dict(self.written.get(name) or {})
        if not override.model_fields_set:
            return written
        return self._section_fields(instance, owner, written, bounds, override, (name,), name)

    def _section_fields(
        self,
        instance: Any,
        owner: type[SpecModel],
        written: dict[str, Any],
        bounds: Any,
        override: BaseModel,
        where: Loc,
        path: str,
    ) -> dict[str, Any]:
        merged = dict(written)
        values = override.model_dump(mode="json", exclude_unset=True)
        for field in [f for f in type(override).model_fields if f in override.model_fields_set]:
            loc: Loc = ("overrides", *where, field)
            field_path = join_path(path, field)
            slot = field_slot(owner, instance, field)
            if slot is None:
                self._problem(loc, "unknown_field", f"{path} has no field {field!r}")
            elif slot.mapping:
                base = merged.get(field) or {}
                for key, raw in (getattr(override, field) or {}).items():
                    self._check_key(
                        instance,
                        merged,
                        field,
                        key,
                        raw,
                        bounds,
                        (*loc, key),
                        join_path(field_path, key),
                    )
                merged[field] = {**base, **values[field]} if values[field] is not None else None
            else:
                bound = section_field_bound(bounds, field)
                self._check(bound, getattr(override, field), slot, loc, field_path)
                merged[field] = values[field]
        return merged

    def _check_key(
        self,
        instance: Any,
        merged: dict[str, Any],
        field: str,
        key: str,
        raw: Any,
        bounds: Any,
        loc: Loc,
        path: str,
    ) -> None:
        slot = self._key_slot(instance, merged, field, key)
        if slot is None:
            self._problem(loc, "unknown_field", f"{path} is not a parameter of this detector")
            return
        try:
            value = slot.adapter.validate_python(raw)
        except ValidationError as exc:
            self._problem(loc, "invalid_value", exc.errors(include_url=False)[0]["msg"])
            return
        self._check(section_field_bound(bounds, field, key), value, slot, loc, path)

    def _key_slot(self, instance: Any, merged: dict[str, Any], field: str, key: str) -> Slot | None:
        if field == "parameters":
            return key_slot(instance.parameters if instance is not None else None, field, key)
        detector = Detector(merged.get("detector", instance.detector))
        params = (
            instance.params if detector == instance.detector else PARAMS_BY_DETECTOR[detector]()
        )
        return key_slot(params, field, key)

    def _check(self, bound: Any, value: Any, slot: Slot, loc: Loc, path: str) -> None:
        found = bound_problem(bound, value, slot, loc=loc, path=path, label=self.ref)
        if found is not None:
            self.problems.append(found)

    def _combine(self) -> Any:
        if "combine" not in self.overrides.model_fields_set or self.overrides.combine is None:
            return self.written.get("combine")
        slot = combine_slot(self.template)
        self._check(
            self.bounds.combine, self.overrides.combine, slot, ("overrides", "combine"), "combine"
        )
        return slot.adapter.dump_python(self.overrides.combine, mode="json")

    # -- locations and provenance ---------------------------------------------------------

    def _product_loc(self, loc: Loc, origins: list[tuple[str, Any]], kept: int) -> Loc:
        head = loc[0] if loc else None
        if head == "rules" and len(loc) > 1 and isinstance(loc[1], int):
            kind, key = origins[loc[1]]
            if kind == "extra":
                return ("extra_rules", key, *loc[2:])
            return ("overrides", "rules", key, *loc[2:])
        if head == "inhibit" and len(loc) > 1 and isinstance(loc[1], int) and loc[1] >= kept:
            return ("extra_inhibit", loc[1] - kept, *loc[2:])
        if head in ("guards", "target") or (
            head == "combine" and self.overrides.combine is not None
        ):
            return ("overrides", *loc)
        return ("disable_rules",)  # the template was valid: only removing rules breaks it

    def _override_paths(self) -> set[str]:
        paths: set[str] = set()
        rule_overrides: dict[str, BaseModel] = self.overrides.rules
        for rule_id, override in rule_overrides.items():
            paths.update(
                flatten(override.model_dump(mode="json", exclude_unset=True), f"rules[{rule_id}]")
            )
        for name in ("guards", "target"):
            section: BaseModel = getattr(self.overrides, name)
            paths.update(flatten(section.model_dump(mode="json", exclude_unset=True), name))
        if self.overrides.combine is not None:
            slot = combine_slot(self.template)
            paths.update(
                flatten(slot.adapter.dump_python(self.overrides.combine, mode="json"), "combine")
            )
        return paths

    def _product_paths(self) -> set[str]:
        extras: dict[str, Any] = {}
        if self.product.extra_rules:
            extras["rules"] = [
                rule.model_dump(mode="json", exclude_unset=True)
                for rule in self.product.extra_rules
            ]
        if self.product.extra_inhibit:
            extras["inhibit"] = [
                entry.model_dump(mode="json") for entry in self.product.extra_inhibit
            ]
        paths = set(flatten(extras)) if extras else set()
        if self.product.description:
            paths.add("description")
        return paths

    def _problem(self, loc: Loc, type_: str, msg: str) -> None:
        self.problems.append((loc, type_, msg))
