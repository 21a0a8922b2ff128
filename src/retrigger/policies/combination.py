"""How rule verdicts combine into one decision: ``any``, ``all``, ``at_least: k``, inhibitions."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import Discriminator, Field, Tag

from retrigger.policies.fields import RuleId, SpecModel

__all__ = ["AtLeast", "Combination", "Combine", "Inhibition", "RuleSelection"]


class Combination(StrEnum):
    """``any``: one holding rule fires the decision; ``all``: every rule must hold."""

    ANY = "any"
    ALL = "all"


class AtLeast(SpecModel):
    """At least ``at_least`` rules must hold (k-of-n voting)."""

    at_least: int = Field(ge=1)
    """Number of holding rules needed, at most the number of rules."""


def _combine_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "mode"
    return "at_least" if isinstance(value, Mapping | AtLeast) else None


Combine = Annotated[
    Annotated[Combination, Tag("mode")] | Annotated[AtLeast, Tag("at_least")],
    Discriminator(
        _combine_tag,
        custom_error_type="combine",
        custom_error_message="must be 'any', 'all' or {at_least: k}",
    ),
]
"""``any`` (default), ``all``, or ``{at_least: k}``."""


def _selection_tag(value: Any) -> str | None:
    if value == "*":
        return "all"
    return "list" if isinstance(value, list | tuple) else None


RuleSelection = Annotated[
    Annotated[Literal["*"], Tag("all")] | Annotated[list[RuleId], Tag("list")],
    Discriminator(
        _selection_tag,
        custom_error_type="rule_selection",
        custom_error_message="must be '*' or a list of rule ids",
    ),
]
"""``*`` (every rule) or a list of rule ids."""


class Inhibition(SpecModel):
    """While ``source`` holds, the ``targets`` are suppressed (bad data, not new data)."""

    source: RuleId
    """Rule whose holding suppresses the targets, e.g. a data-quality alert."""
    targets: RuleSelection
    """Rules suppressed while the source holds; ``*`` means every other rule."""
