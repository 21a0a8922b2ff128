"""Checks of override bounds: a template's bounds against its own values, when it is saved,
and a product's overrides against those bounds, when its policy is resolved.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any, Final, Protocol

from pydantic import JsonValue, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from retrigger.policies.bounds import (
    FIXED_RULE_FIELDS,
    MAPPING_FIELDS,
    AllowedBound,
    Overridable,
    RangeBound,
)
from retrigger.policies.combination import AtLeast, Combination, Combine
from retrigger.policies.durations import CountWindow, TimeWindow
from retrigger.policies.fields import BoundKeyword, SpecModel, field_type
from retrigger.policies.guards import Guards
from retrigger.policies.problems import Loc, Problem
from retrigger.policies.rules import RuleModel
from retrigger.policies.target import Target

__all__ = [
    "Slot",
    "bound_problem",
    "check_overridable",
    "combine_slot",
    "field_slot",
    "key_slot",
    "normalise_bound",
    "section_field_bound",
]


class _Body(Protocol):
    @property
    def rules(self) -> Sequence[RuleModel]: ...
    @property
    def guards(self) -> Guards: ...
    @property
    def target(self) -> Target | None: ...
    @property
    def combine(self) -> Combination | AtLeast: ...


@dataclass(frozen=True, slots=True)
class Slot:
    """One overridable value of a template: its type and its current (typed) value."""

    adapter: TypeAdapter[Any]
    value: Any
    mapping: bool = False


@cache
def _adapter(owner: type[SpecModel], name: str) -> TypeAdapter[Any]:
    info: FieldInfo = owner.model_fields[name]
    return TypeAdapter(field_type(info))


_JSON_ADAPTER: Final[TypeAdapter[Any]] = TypeAdapter(JsonValue)
_COMBINE_ADAPTER: Final[TypeAdapter[Any]] = TypeAdapter(Combine)


def field_slot(owner: type[SpecModel], instance: SpecModel | None, name: str) -> Slot | None:
    """The slot of field ``name`` of a rule, ``Guards`` or ``Target`` (``None``: no such field)."""
    if name not in owner.model_fields or name in FIXED_RULE_FIELDS:
        return None
    value = getattr(instance, name) if instance is not None else None
    return Slot(_adapter(owner, name), value, mapping=name in MAPPING_FIELDS)


def key_slot(container: Any, name: str, key: str) -> Slot | None:
    """The slot of one key of ``params`` (typed per detector) or target ``parameters``."""
    if name == "parameters":
        current = container.get(key) if isinstance(container, Mapping) else None
        return Slot(_JSON_ADAPTER, current)
    if not isinstance(container, SpecModel) or key not in type(container).model_fields:
        return None
    return Slot(_adapter(type(container), key), getattr(container, key))


def combine_slot(body: _Body) -> Slot:
    """The slot of ``combine``."""
    return Slot(_COMBINE_ADAPTER, body.combine)


def section_field_bound(section: Any, name: str, key: str | None = None) -> Any:
    """The bound of ``name`` (or of ``name[key]``) in a section's bounds; ``None``: undeclared."""
    if isinstance(section, BoundKeyword):
        return section
    entry = section.get(name) if isinstance(section, Mapping) else None
    if key is None or not isinstance(entry, Mapping):
        return entry
    return entry.get(key)


def _magnitude(value: Any) -> tuple[str, float] | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return ("number", float(value))
    if isinstance(value, timedelta):
        return ("duration", value.total_seconds())
    if isinstance(value, TimeWindow):
        return ("duration", value.duration.total_seconds())
    if isinstance(value, CountWindow):
        return ("count", float(value.count))
    return None


def _json(adapter: TypeAdapter[Any], value: Any) -> Any:
    return adapter.dump_python(value, mode="json")


def _shown(adapter: TypeAdapter[Any], value: Any) -> str:
    dumped = _json(adapter, value)
    return dumped if isinstance(dumped, str) else json.dumps(dumped)


def _typed(adapter: TypeAdapter[Any], raw: Any, loc: Loc, problems: list[Problem]) -> Any:
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        problems.append((loc, "invalid_bound", exc.errors(include_url=False)[0]["msg"]))
        return None


def normalise_bound(bound: Any, slot: Slot, loc: Loc) -> tuple[Any, list[Problem]]:
    """Validate a template's bound against the field it constrains; canonical JSON values."""
    if isinstance(bound, BoundKeyword):
        return bound, []
    if slot.mapping:
        return bound, [(loc, "invalid_bound", "use 'any', 'locked' or a bound per key")]
    if isinstance(bound, AllowedBound):
        return _normalise_allowed(bound, slot, loc)
    return _normalise_range(bound, slot, loc)


def _normalise_allowed(
    bound: AllowedBound, slot: Slot, loc: Loc
) -> tuple[AllowedBound, list[Problem]]:
    problems: list[Problem] = []
    typed = [
        _typed(slot.adapter, value, (*loc, "allowed", index), problems)
        for index, value in enumerate(bound.allowed)
    ]
    if problems:
        return bound, problems
    allowed = list(dict.fromkeys(json.dumps(_json(slot.adapter, value)) for value in typed))
    if slot.value is not None and json.dumps(_json(slot.adapter, slot.value)) not in allowed:
        own = _shown(slot.adapter, slot.value)
        problems.append((loc, "bound_excludes_template", f"the template's own {own} is excluded"))
    return AllowedBound(allowed=[json.loads(value) for value in allowed]), problems


def _normalise_range(bound: RangeBound, slot: Slot, loc: Loc) -> tuple[RangeBound, list[Problem]]:
    problems: list[Problem] = []
    ends = {
        end: _typed(slot.adapter, raw, (*loc, end), problems)
        for end, raw in (("min", bound.min), ("max", bound.max))
        if raw is not None
    }
    magnitudes = {end: _magnitude(value) for end, value in ends.items()}
    for end, magnitude in magnitudes.items():
        if magnitude is None and (*loc, end) not in {found[0] for found in problems}:
            message = "a range needs a number, duration or time/count window"
            problems.append(((*loc, end), "invalid_bound", message))
    if problems:
        return bound, problems
    lo, hi = magnitudes.get("min"), magnitudes.get("max")
    if lo and hi and (lo[0] != hi[0] or lo[1] > hi[1]):
        message = "min must not exceed max, and both must be of the same kind"
        problems.append(((*loc, "min"), "invalid_bound", message))
    elif slot.value is not None and not _within(slot.value, lo, hi):
        own = _shown(slot.adapter, slot.value)
        problems.append((loc, "bound_excludes_template", f"the template's own {own} is outside"))
    return RangeBound(**{end: _json(slot.adapter, v) for end, v in ends.items()}), problems


def _within(value: Any, lo: tuple[str, float] | None, hi: tuple[str, float] | None) -> bool:
    magnitude = _magnitude(value)
    if magnitude is None:
        return False
    kind, number = magnitude
    low_ok = lo is None or (lo[0] == kind and number >= lo[1])
    high_ok = hi is None or (hi[0] == kind and number <= hi[1])
    return low_ok and high_ok


def bound_problem(
    bound: Any, value: Any, slot: Slot, *, loc: Loc, path: str, label: str
) -> Problem | None:
    """Why setting ``path`` to ``value`` violates the template's bound (``None``: it doesn't)."""
    shown = _shown(slot.adapter, value) if value is not None else "null"
    if bound is None:
        return (
            loc,
            "not_overridable",
            f"{path} is not overridable: template {label} declares no bound for it",
        )
    if bound == BoundKeyword.LOCKED:
        return (loc, "locked", f"{path} is locked by template {label}")
    if bound == BoundKeyword.ANY:
        return None
    if isinstance(bound, AllowedBound):
        if json.dumps(_json(slot.adapter, value)) in {json.dumps(v) for v in bound.allowed}:
            return None
        choices = ", ".join(v if isinstance(v, str) else json.dumps(v) for v in bound.allowed)
        return (
            loc,
            "bound_allowed",
            f"{path} = {shown} is not allowed by template {label} (allowed: {choices})",
        )
    lo = _magnitude(slot.adapter.validate_python(bound.min)) if bound.min is not None else None
    hi = _magnitude(slot.adapter.validate_python(bound.max)) if bound.max is not None else None
    if _within(value, lo, hi):
        return None
    magnitude = _magnitude(value)
    if hi and magnitude and magnitude[0] == hi[0] and magnitude[1] > hi[1]:
        return (
            loc,
            "bound_max",
            f"{path} = {shown} is above the maximum {_text(bound.max)} allowed by template {label}",
        )
    if lo and magnitude and magnitude[0] == lo[0] and magnitude[1] < lo[1]:
        return (
            loc,
            "bound_min",
            f"{path} = {shown} is below the minimum {_text(bound.min)} allowed by template {label}",
        )
    span = f"[{_text(bound.min)}, {_text(bound.max)}]"
    return (
        loc,
        "bound_range",
        f"{path} = {shown} is outside the range {span} allowed by template {label}",
    )


def _text(value: JsonValue) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)


def check_overridable(body: _Body, overridable: Overridable) -> tuple[Overridable, list[Problem]]:
    """Check a template's bounds against its own rules and values; return them normalised."""
    problems: list[Problem] = []
    base: Loc = ("overridable",)
    rules = {rule.id: rule for rule in body.rules}
    rule_bounds: dict[str, Any] = {}
    for rule_id, section in overridable.rules.items():
        rule = rules.get(rule_id)
        if rule is None:
            problems.append(((*base, "rules", rule_id), "unknown_rule", f"no rule {rule_id!r}"))
            continue
        label = f"{rule.type} rule {rule_id!r}"
        loc = (*base, "rules", rule_id)
        rule_bounds[rule_id] = _check_section(section, type(rule), rule, loc, label, problems)
    guards = _check_section(
        overridable.guards, Guards, body.guards, (*base, "guards"), "guards", problems
    )
    target = _check_section(
        overridable.target, Target, body.target, (*base, "target"), "target", problems
    )
    combine = overridable.combine
    if combine is not None:
        combine, found = normalise_bound(combine, combine_slot(body), (*base, "combine"))
        problems.extend(found)
    if isinstance(overridable.allow_disable, list):
        problems.extend(
            ((*base, "allow_disable", index), "unknown_rule", f"no rule {rule_id!r}")
            for index, rule_id in enumerate(overridable.allow_disable)
            if rule_id not in rules
        )
    update = {"rules": rule_bounds, "guards": guards, "target": target, "combine": combine}
    written = {key: value for key, value in update.items() if key in overridable.model_fields_set}
    return overridable.model_copy(update=written), problems


def _check_section(
    section: Any,
    owner: type[SpecModel],
    instance: Any,
    loc: Loc,
    label: str,
    problems: list[Problem],
) -> Any:
    if isinstance(section, BoundKeyword):
        return section
    checked: dict[str, Any] = {}
    for name, entry in section.items():
        slot = field_slot(owner, instance, name)
        if slot is None:
            problems.append(
                ((*loc, name), "unknown_field", f"{label} has no overridable field {name!r}")
            )
        elif isinstance(entry, Mapping):
            if not slot.mapping:
                problems.append(
                    (
                        (*loc, name),
                        "invalid_bound",
                        "per-key bounds only apply to params and parameters",
                    )
                )
                continue
            per_key: dict[str, Any] = {}
            for key, bound in entry.items():
                key_loc = (*loc, name, key)
                found_slot = key_slot(slot.value, name, key)
                if found_slot is None:
                    problems.append((key_loc, "unknown_field", f"{label} has no parameter {key!r}"))
                    continue
                per_key[key], found = normalise_bound(bound, found_slot, key_loc)
                problems.extend(found)
            checked[name] = per_key
        else:
            checked[name], found = normalise_bound(entry, slot, (*loc, name))
            problems.extend(found)
    return checked
