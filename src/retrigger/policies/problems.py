"""Located validation problems: error dicts whose ``loc`` is a path inside the policy document.

Pydantic puts union tags (``data_drift``, ``list``) into its locations; :func:`errors_from`
walks the submitted document alongside each location and keeps only the segments that name
something the author wrote, so ``("rules", 2, "data_drift", "alpha")`` becomes
``["rules", 2, "alpha"]``. Validators use :func:`fail` to report errors on sibling fields.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, TypeAlias, TypeVar

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from retrigger.errors import InvalidConfig

__all__ = [
    "ErrorDict",
    "Loc",
    "Problem",
    "errors_from",
    "fail",
    "problem",
    "raise_invalid",
    "validate_as",
]

Loc: TypeAlias = tuple[str | int, ...]
ErrorDict: TypeAlias = dict[str, Any]
"""``{"loc": [...], "msg": "...", "type": "..."}``, the shape :class:`InvalidConfig` carries."""
Problem: TypeAlias = tuple[Loc, str, str]
"""``(loc, type, message)`` collected by validators before they :func:`fail`."""

_DISCRIMINATORS = ("type", "detector")
_SYNTHETIC_TAGS = frozenset({"templated", "standalone"})  # product policy forms
_TAG_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})
M = TypeVar("M")


def problem(loc: Sequence[str | int], type_: str, msg: str) -> ErrorDict:
    """One error dict."""
    return {"loc": list(loc), "msg": msg, "type": type_}


def fail(title: str, problems: Sequence[Problem]) -> NoReturn:
    """Raise a pydantic ``ValidationError`` from inside a validator, one error per problem.

    Pydantic prefixes the locations with the path of the model being validated, so a model
    validator can point at one of its fields (``("m",)``) instead of at itself.
    """
    raise ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError(type_, "{reason}", {"reason": msg}), loc=loc, input=None
            )
            for loc, type_, msg in problems
        ],
    )


def errors_from(exc: ValidationError, document: Any) -> list[ErrorDict]:
    """Turn a pydantic error into error dicts located in ``document`` (deduplicated)."""
    out: list[ErrorDict] = []
    seen: set[tuple[str, str]] = set()
    for err in exc.errors(include_url=False):
        loc = _document_loc(err["loc"], document)
        msg = str(err["msg"])
        if err["type"] in _TAG_ERRORS:
            ctx = err.get("ctx", {})
            name = str(ctx.get("discriminator", "")).strip("'")
            if name.isidentifier():
                loc.append(name)
            if "tag" in ctx:
                msg = f"unknown value {ctx['tag']!r}, expected one of: {ctx['expected_tags']}"
            else:
                msg = "Field required"
        if err["type"] == "extra_forbidden":
            msg = f"unknown field {loc[-1]!r}" if loc else msg
        key = (repr(loc), msg)
        if key not in seen:
            seen.add(key)
            out.append(problem(loc, str(err["type"]), msg))
    return out


def _document_loc(loc: Sequence[str | int], document: Any) -> list[str | int]:
    kept: list[str | int] = []
    current = document
    last = len(loc) - 1
    for position, segment in enumerate(loc):
        if isinstance(current, Mapping) and segment in current:
            kept.append(segment)
            current = current[segment]
        elif (
            isinstance(current, Sequence)
            and not isinstance(current, str)
            and isinstance(segment, int)
            and 0 <= segment < len(current)
        ):
            kept.append(segment)
            current = current[segment]
        elif (
            position == last
            and isinstance(current, Mapping)
            and isinstance(segment, str)
            and not _is_tag(current, segment)
        ):
            kept.append(segment)  # a missing field: the author did not write it, but names it
        # anything else is a union tag or member name pydantic inserted: drop it
    return kept


def _is_tag(container: Mapping[str, Any], segment: str) -> bool:
    if segment in _SYNTHETIC_TAGS:
        return True
    return any(container.get(name) == segment for name in _DISCRIMINATORS)


def validate_as(
    schema: type[M] | TypeAdapter[M], document: Any, *, what: str, prefix: Loc = ()
) -> M:
    """Validate ``document`` or raise :class:`InvalidConfig` listing every located error."""
    try:
        if isinstance(schema, TypeAdapter):
            return schema.validate_python(document)
        if isinstance(schema, type) and issubclass(schema, BaseModel):
            return schema.model_validate(document)  # type: ignore[return-value]
        return TypeAdapter(schema).validate_python(document)
    except ValidationError as exc:
        errors = errors_from(exc, document)
        for error in errors:
            error["loc"] = [*prefix, *error["loc"]]
        raise InvalidConfig(f"invalid {what}: {_summary(errors)}", errors=errors) from None


def _summary(errors: Sequence[ErrorDict]) -> str:
    first = errors[0]
    where = _dotted(first["loc"]) or "document"
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _dotted(loc: Sequence[str | int]) -> str:
    out = ""
    for segment in loc:
        out += f"[{segment}]" if isinstance(segment, int) else f".{segment}" if out else segment
    return out


def raise_invalid(what: str, errors: Sequence[ErrorDict]) -> NoReturn:
    """Raise :class:`InvalidConfig` for problems found outside pydantic (bounds, references)."""
    raise InvalidConfig(f"invalid {what}: {_summary(errors)}", errors=list(errors))
