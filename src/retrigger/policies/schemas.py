"""Policy documents: templates, product policies (templated or standalone) and overrides.

A template is a full policy body plus the ``overridable`` bounds; a product policy either
references one template version and overrides within those bounds, or is a standalone body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, Final, Self

from pydantic import (
    BaseModel,
    Discriminator,
    Field,
    JsonValue,
    Tag,
    TypeAdapter,
    create_model,
    model_validator,
)

from retrigger.policies.bound_checks import check_overridable
from retrigger.policies.bounds import Overridable
from retrigger.policies.combination import AtLeast, Combination, Combine, Inhibition
from retrigger.policies.fields import Name, RuleId, SpecModel, field_type
from retrigger.policies.guards import Guards
from retrigger.policies.problems import Problem, fail
from retrigger.policies.rules import RULE_MODELS, Rule, RuleModel
from retrigger.policies.target import Target

__all__ = [
    "BODY_FIELDS",
    "GuardsOverride",
    "Overrides",
    "PolicyBody",
    "ProductPolicy",
    "ProductPolicySpec",
    "RuleOverride",
    "StandalonePolicySpec",
    "TargetOverride",
    "TemplateRef",
    "TemplateSpec",
    "TemplatedPolicySpec",
]

BODY_FIELDS: Final = ("rules", "combine", "inhibit", "guards", "target")


class PolicyBody(SpecModel):
    """Rules, how they combine, guards and target: everything an evaluation needs."""

    description: str | None = Field(None, max_length=2000)
    """What the policy is for."""
    rules: list[Rule] = Field(min_length=1, max_length=100)
    """Retraining criteria; ids unique within the policy."""
    combine: Combine = Combination.ANY
    """How holding rules make a decision fire: ``any``, ``all`` or ``{at_least: k}``."""
    inhibit: list[Inhibition] = Field(default_factory=list, max_length=100)
    """Suppressions between rules, at most one entry per source."""
    guards: Guards = Field(default_factory=Guards)
    """Checks between a fired decision and a run."""
    target: Target | None = None
    """Pipeline to launch; ``null`` uses the product's orchestrator binding."""

    def rule(self, rule_id: str) -> RuleModel | None:
        """The rule with id ``rule_id``, if any."""
        return next((rule for rule in self.rules if rule.id == rule_id), None)

    @model_validator(mode="after")
    def _references(self) -> Self:
        problems = _reference_problems(self.rules, self.inhibit, self.combine)
        if problems:
            fail(type(self).__name__, problems)
        return self


def _reference_problems(
    rules: Iterable[RuleModel], inhibit: Iterable[Inhibition], combine: Combination | AtLeast
) -> list[Problem]:
    problems: list[Problem] = []
    first_index: dict[str, int] = {}
    for index, rule in enumerate(rules):
        if rule.id in first_index:
            message = f"duplicate rule id {rule.id!r} (also rules[{first_index[rule.id]}])"
            problems.append((("rules", index, "id"), "duplicate_rule_id", message))
        first_index.setdefault(rule.id, index)
    sources: dict[str, int] = {}
    for index, entry in enumerate(inhibit):
        loc = ("inhibit", index)
        if entry.source not in first_index:
            problems.append(((*loc, "source"), "unknown_rule", f"no rule {entry.source!r}"))
        elif entry.source in sources:
            message = f"{entry.source!r} already has an entry (inhibit[{sources[entry.source]}])"
            problems.append(((*loc, "source"), "duplicate_source", message))
        sources.setdefault(entry.source, index)
        if isinstance(entry.targets, list):
            for position, target in enumerate(entry.targets):
                target_loc = (*loc, "targets", position)
                if target not in first_index:
                    problems.append((target_loc, "unknown_rule", f"no rule {target!r}"))
                elif target == entry.source:
                    problems.append((target_loc, "self_inhibition", "a rule cannot inhibit itself"))
    # inhibition sources only suppress: they never count towards combine
    counted = len(set(first_index) - set(sources))
    if isinstance(combine, AtLeast) and combine.at_least > counted:
        message = f"must not exceed the number of rules that are not inhibition sources ({counted})"
        problems.append((("combine", "at_least"), "at_least_too_large", message))
    elif first_index and counted == 0:
        message = "every rule is an inhibition source: nothing could ever fire"
        problems.append((("inhibit",), "nothing_counted", message))
    return problems


class TemplateSpec(PolicyBody):
    """An organization-wide standard (``kind: PolicyTemplate``): a body plus its bounds."""

    overridable: Overridable = Field(default_factory=Overridable)
    """What products may change, and within which bounds."""

    @model_validator(mode="after")
    def _bounds(self) -> Self:
        normalised, problems = check_overridable(self, self.overridable)
        if problems:
            fail("TemplateSpec", problems)
        self.__dict__["overridable"] = normalised  # canonical bound values, same meaning
        return self


_TEMPLATE_REF = re.compile(r"^(?P<name>[^@\s]+)@(?P<version>\d+)$")


class TemplateRef(SpecModel):
    """A pinned template version, written ``name@version`` or ``{name, version}``."""

    name: Name
    version: int = Field(ge=1)

    @model_validator(mode="before")
    @classmethod
    def _from_text(cls, value: Any) -> Any:
        if isinstance(value, str):
            match = _TEMPLATE_REF.match(value.strip())
            if match is None:
                fail("TemplateRef", [((), "template_ref", "expected 'name@version', e.g. 'x@3'")])
            return {"name": match["name"], "version": int(match["version"])}
        return value

    def __str__(self) -> str:
        return f"{self.name}@{self.version}"


def _partial(
    name: str, owners: Iterable[type[BaseModel]], *, skip: frozenset[str], raw: frozenset[str]
) -> type[SpecModel]:
    """A model with the fields of ``owners``, all optional: set fields are the overrides.

    Field types and constraints are kept, so an override is type-checked before it meets its
    template; cross-field rules are checked after merging. ``raw`` fields stay plain JSON
    (``params`` can only be typed once the detector is known).
    """
    fields: dict[str, Any] = {}
    for owner in owners:
        for field, info in owner.model_fields.items():
            if field in skip or field in fields:
                continue
            annotation = dict[str, JsonValue] if field in raw else field_type(info)
            fields[field] = (annotation | None, Field(None, description=info.description))
    return create_model(name, __base__=SpecModel, __doc__=f"Overrides: {name}.", **fields)


RuleOverride = _partial(
    "RuleOverride", RULE_MODELS.values(), skip=frozenset({"id", "type"}), raw=frozenset({"params"})
)
GuardsOverride = _partial("GuardsOverride", [Guards], skip=frozenset(), raw=frozenset())
TargetOverride = _partial("TargetOverride", [Target], skip=frozenset(), raw=frozenset())


class Overrides(SpecModel):
    """Values replacing the template's, addressed by rule id; each needs a template bound."""

    rules: dict[RuleId, RuleOverride] = Field(default_factory=dict)  # type: ignore[valid-type]
    """Per rule id, the fields to change, e.g. ``{staleness: {max_age: 45d}}``."""
    guards: GuardsOverride = Field(default_factory=GuardsOverride)  # type: ignore[valid-type]
    """Guard fields to change."""
    target: TargetOverride = Field(default_factory=TargetOverride)  # type: ignore[valid-type]
    """Target fields to change; ``parameters`` merge key by key."""
    combine: Combine | None = None
    """Replacement of the template's ``combine``."""


class TemplatedPolicySpec(SpecModel):
    """A product policy that inherits a template version and overrides within its bounds."""

    description: str | None = Field(None, max_length=2000)
    """What this product's policy adds to the standard."""
    template: TemplateRef
    """The template version inherited, e.g. ``tier-1-classifier@3``."""
    overrides: Overrides = Field(default_factory=Overrides)
    """Changed values, each within the template's bounds."""
    extra_rules: list[Rule] = Field(default_factory=list, max_length=100)
    """Product-only rules, if the template has ``allow_extra_rules``."""
    extra_inhibit: list[Inhibition] = Field(default_factory=list, max_length=100)
    """Product-only inhibitions, if the template has ``allow_extra_inhibit``."""
    disable_rules: list[RuleId] = Field(default_factory=list, max_length=100)
    """Template rules switched off, each listed in the template's ``allow_disable``."""

    @model_validator(mode="before")
    @classmethod
    def _no_body(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            present = [field for field in BODY_FIELDS if field in value]
            hint = "overrides, extra_rules, extra_inhibit or disable_rules"
            message = f"not allowed with a template: use {hint}"
            if present:
                fail(
                    "TemplatedPolicySpec", [((f,), "body_with_template", message) for f in present]
                )
        return value

    @model_validator(mode="after")
    def _unique_ids(self) -> Self:
        problems: list[Problem] = []
        seen: set[str] = set()
        for index, rule in enumerate(self.extra_rules):
            if rule.id in seen:
                problems.append((("extra_rules", index, "id"), "duplicate_rule_id", "duplicate id"))
            seen.add(rule.id)
        for index, rule_id in enumerate(self.disable_rules):
            if self.disable_rules.index(rule_id) != index:
                problems.append((("disable_rules", index), "duplicate", "listed twice"))
        if problems:
            fail("TemplatedPolicySpec", problems)
        return self


class StandalonePolicySpec(PolicyBody):
    """A product policy that references no template: the body is the policy."""


def _product_tag(value: Any) -> str:
    if isinstance(value, TemplatedPolicySpec):
        return "templated"
    if isinstance(value, Mapping) and "template" in value:
        return "templated"
    return "standalone"


ProductPolicy = TemplatedPolicySpec | StandalonePolicySpec
ProductPolicySpec = Annotated[
    Annotated[TemplatedPolicySpec, Tag("templated")]
    | Annotated[StandalonePolicySpec, Tag("standalone")],
    Discriminator(_product_tag),
]
"""A product policy (``kind: ProductPolicy``): with ``template`` it is templated."""

PRODUCT_POLICY_ADAPTER: Final[TypeAdapter[ProductPolicy]] = TypeAdapter(ProductPolicySpec)
