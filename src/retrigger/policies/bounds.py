"""Override bounds a template declares: which fields products may change, and how far.

A bound is ``any`` (free), ``locked``, ``{min, max}`` (numbers, durations, windows) or
``{allowed: [...]}``; a field without a bound cannot be overridden. ``params`` and target
``parameters`` take a bound per key. The checks live in :mod:`retrigger.policies.bound_checks`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import (
    Discriminator,
    Field,
    JsonValue,
    SerializerFunctionWrapHandler,
    Tag,
    model_serializer,
)

from retrigger.policies.combination import RuleSelection
from retrigger.policies.fields import BoundKeyword, RuleId, SpecModel

__all__ = [
    "FIXED_RULE_FIELDS",
    "MAPPING_FIELDS",
    "AllowedBound",
    "FieldBound",
    "Overridable",
    "RangeBound",
    "SectionBounds",
]

MAPPING_FIELDS: Final = frozenset({"params", "parameters"})
"""Dict-valued fields: overrides merge key by key, and bounds may be given per key."""
FIXED_RULE_FIELDS: Final = frozenset({"id", "type"})
"""Rule fields no override can change."""


class RangeBound(SpecModel):
    """Inclusive range for numbers, durations and windows; either end may be omitted."""

    min: JsonValue = None
    max: JsonValue = None

    @model_serializer(mode="wrap")
    def _ends_only(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        dumped: dict[str, Any] = handler(self)
        return {end: value for end, value in dumped.items() if value is not None}


class AllowedBound(SpecModel):
    """Enumerated values a product may choose from."""

    allowed: list[JsonValue] = Field(min_length=1, max_length=100)


def _field_bound_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "keyword"
    if isinstance(value, RangeBound | AllowedBound):
        return "range" if isinstance(value, RangeBound) else "allowed"
    if isinstance(value, Mapping):
        if "allowed" in value:
            return "allowed"
        if value and set(value) <= {"min", "max"}:
            return "range"
    return None


_FIELD_BOUND_MESSAGE: Final = "must be 'any', 'locked', {min, max} or {allowed: [...]}"

FieldBound = Annotated[
    Annotated[BoundKeyword, Tag("keyword")]
    | Annotated[RangeBound, Tag("range")]
    | Annotated[AllowedBound, Tag("allowed")],
    Discriminator(
        _field_bound_tag, custom_error_type="bound", custom_error_message=_FIELD_BOUND_MESSAGE
    ),
]


def _entry_tag(value: Any) -> str | None:
    if _field_bound_tag(value) is not None:
        return "bound"
    return "per_key" if isinstance(value, Mapping) else None


FieldBoundEntry = Annotated[
    Annotated[FieldBound, Tag("bound")] | Annotated[dict[str, FieldBound], Tag("per_key")],
    Discriminator(_entry_tag, custom_error_type="bound", custom_error_message=_FIELD_BOUND_MESSAGE),
]


def _section_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "keyword"
    return "fields" if isinstance(value, Mapping) else None


SectionBounds = Annotated[
    Annotated[BoundKeyword, Tag("keyword")] | Annotated[dict[str, FieldBoundEntry], Tag("fields")],
    Discriminator(
        _section_tag,
        custom_error_type="bounds",
        custom_error_message="must be 'any', 'locked' or a mapping of field names to bounds",
    ),
]


class Overridable(SpecModel):
    """What products referencing the template may change; everything else is fixed."""

    rules: dict[RuleId, SectionBounds] = Field(default_factory=dict)
    """Per rule id: ``any``, ``locked``, or a bound per field."""
    guards: SectionBounds = Field(default_factory=dict)
    """``any``, ``locked``, or a bound per guard field."""
    target: SectionBounds = Field(default_factory=dict)
    """``any``, ``locked``, or a bound per target field (``parameters`` per key)."""
    combine: FieldBound | None = None
    """Bound of ``combine``; absent means it cannot be overridden."""
    allow_extra_rules: bool = False
    """Products may add rules of their own (``extra_rules``)."""
    allow_extra_inhibit: bool = False
    """Products may add inhibitions (``extra_inhibit``)."""
    allow_disable: RuleSelection = Field(default_factory=list)
    """Template rules products may switch off (``disable_rules``); ``*`` for all."""
