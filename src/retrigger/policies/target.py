"""Where a fired decision launches retraining: connection, pipeline and parameter template.

String values of ``parameters`` (at any depth) may contain placeholders in braces, filled at
dispatch time; ``{{`` and ``}}`` stand for literal braces. Unknown placeholders are rejected
when the policy is saved, so a typo never reaches an orchestrator. The same syntax and code
(:func:`placeholder_problems`, :func:`render_template`) serve other JSON templates, such as a
webhook connection's ``body_template``.
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable, Collection, Mapping
from typing import Annotated, Any, Final

from pydantic import AfterValidator, Field, JsonValue

from retrigger.policies.fields import Name, SpecModel
from retrigger.policies.problems import Loc, Problem, fail

__all__ = [
    "PLACEHOLDERS",
    "Parameters",
    "Target",
    "placeholder_problems",
    "render_parameters",
    "render_template",
    "stringify",
]

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


def _is_known(field: str, known: Collection[str], prefixes: Collection[str]) -> bool:
    if field in known:
        return True
    return any(field.startswith(prefix) and len(field) > len(prefix) for prefix in prefixes)


def _string_problems(
    text: str, loc: Loc, known: Collection[str], prefixes: Collection[str]
) -> list[Problem]:
    try:
        pieces = list(_FORMATTER.parse(text))
    except ValueError as exc:  # unbalanced braces
        return [(loc, "invalid_template", f"{exc}; write {{{{ or }}}} for literal braces")]
    problems: list[Problem] = []
    for _, field, spec, conversion in pieces:
        if field is None:
            continue
        if not _is_known(field, known, prefixes):
            names = ", ".join([*sorted(known), *(f"{prefix}<name>" for prefix in prefixes)])
            problems.append(
                (loc, "unknown_placeholder", f"unknown placeholder {{{field}}}; known: {names}")
            )
        elif spec or conversion:
            problems.append(
                (loc, "invalid_template", f"placeholder {{{field}}} takes no format or conversion")
            )
    return problems


def placeholder_problems(
    value: JsonValue,
    loc: Loc = (),
    *,
    known: Collection[str] = PLACEHOLDERS,
    prefixes: Collection[str] = (),
) -> list[Problem]:
    """Every unknown or malformed placeholder in ``value``, located relative to it.

    A placeholder is known if it is one of ``known`` or one of ``prefixes`` followed by a name
    (``parameters.`` accepts ``{parameters.epochs}``). Only string values are templates; object
    keys are taken literally.
    """
    if isinstance(value, str):
        return _string_problems(value, loc, known, prefixes)
    if isinstance(value, Mapping):
        return [
            p
            for key, item in value.items()
            for p in placeholder_problems(item, (*loc, key), known=known, prefixes=prefixes)
        ]
    if isinstance(value, list):
        return [
            p
            for i, item in enumerate(value)
            for p in placeholder_problems(item, (*loc, i), known=known, prefixes=prefixes)
        ]
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


def stringify(value: Any) -> str:
    """A value as text inside a longer string: null is empty, a list of strings is joined with
    ``"; "`` (as ``{reasons}`` is in parameters), other non-strings are compact JSON."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return "; ".join(value)
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def render_template(template: Any, lookup: Callable[[str], Any]) -> Any:
    """Fill the placeholders of a validated JSON template with ``lookup(name)``.

    A string that is exactly one placeholder becomes the looked-up value itself, keeping its
    JSON type (a list stays a list, a number a number); placeholders inside longer strings are
    replaced by :func:`stringify` of their value. Whatever ``lookup`` raises propagates.
    """
    if isinstance(template, str):
        pieces = list(_FORMATTER.parse(template))
        if len(pieces) == 1 and pieces[0][0] == "" and pieces[0][1] is not None:
            return lookup(pieces[0][1])
        return "".join(
            literal + ("" if field is None else stringify(lookup(field)))
            for literal, field, _, _ in pieces
        )
    if isinstance(template, Mapping):
        return {key: render_template(item, lookup) for key, item in template.items()}
    if isinstance(template, list):
        return [render_template(item, lookup) for item in template]
    return template


def render_parameters(parameters: Mapping[str, Any], values: Mapping[str, str]) -> dict[str, Any]:
    """Fill the placeholders of a validated parameter template with ``values``."""
    return {key: render_template(item, values.__getitem__) for key, item in parameters.items()}
