"""Where a fired decision launches retraining: connection, pipeline and parameter template.

String values of ``parameters`` (at any depth) may contain placeholders in braces, filled at
dispatch time; ``{{`` and ``}}`` stand for literal braces. Unknown placeholders are rejected
when the policy is saved, so a typo never reaches an orchestrator.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field, JsonValue

from retrigger.policies.fields import Name, SpecModel
from retrigger.policies.problems import Loc, Problem, fail

__all__ = ["PLACEHOLDERS", "Parameters", "Target", "placeholder_problems", "render_parameters"]

PLACEHOLDERS: Final = frozenset(
    {
        "product",
        "decision_id",
        "run_id",
        "reasons",
        "window_start",
        "window_end",
        "reference_version",
        "model_version",
    }
)
_FORMATTER: Final = string.Formatter()


def _string_problems(text: str, loc: Loc) -> list[Problem]:
    try:
        pieces = list(_FORMATTER.parse(text))
    except ValueError as exc:  # unbalanced braces
        return [(loc, "invalid_template", f"{exc}; write {{{{ or }}}} for literal braces")]
    problems: list[Problem] = []
    for _, field, spec, conversion in pieces:
        if field is None:
            continue
        if field not in PLACEHOLDERS:
            known = ", ".join(sorted(PLACEHOLDERS))
            problems.append(
                (loc, "unknown_placeholder", f"unknown placeholder {{{field}}}; known: {known}")
            )
        elif spec or conversion:
            problems.append(
                (loc, "invalid_template", f"placeholder {{{field}}} takes no format or conversion")
            )
    return problems


def placeholder_problems(value: JsonValue, loc: Loc = ()) -> list[Problem]:
    """Every unknown or malformed placeholder in ``value``, located relative to it."""
    if isinstance(value, str):
        return _string_problems(value, loc)
    if isinstance(value, Mapping):
        return [p for key, item in value.items() for p in placeholder_problems(item, (*loc, key))]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in placeholder_problems(item, (*loc, i))]
    return []


def _check_parameters(value: dict[str, JsonValue]) -> dict[str, JsonValue]:
    problems = placeholder_problems(value)
    if problems:
        fail("parameters", problems)
    return value


Parameters = Annotated[dict[str, JsonValue], AfterValidator(_check_parameters)]


class Target(SpecModel):
    """The orchestrator pipeline a fired decision launches.

    Whether ``connection`` exists is checked by the service, not here. Without a target the
    product's own orchestrator binding is used.
    """

    connection: Name
    """Name of a configured orchestrator connection."""
    pipeline: str = Field(min_length=1, max_length=500)
    """Pipeline reference in the orchestrator: DAG id, pipeline id, workflow template, URL path."""
    parameters: Parameters = Field(default_factory=dict)
    """Run parameters; strings may contain placeholders such as ``{product}`` and ``{run_id}``."""


def render_parameters(parameters: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """Fill the placeholders of a validated parameter template with ``values``."""

    def render(value: Any) -> Any:
        if isinstance(value, str):
            return value.format_map(values)
        if isinstance(value, Mapping):
            return {key: render(item) for key, item in value.items()}
        if isinstance(value, list):
            return [render(item) for item in value]
        return value

    return {key: render(item) for key, item in parameters.items()}
