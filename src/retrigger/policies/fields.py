"""Shared building blocks of policy documents: the strict base model, names, ids, time zones."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any, Final
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, StringConstraints
from pydantic.fields import FieldInfo
from pydantic_core import PydanticCustomError

from retrigger.policies.cron import CronError, parse_cron

__all__ = [
    "SLUG_PATTERN",
    "BoundKeyword",
    "CronText",
    "Name",
    "RuleId",
    "SpecModel",
    "TimeZoneName",
    "field_type",
]

SLUG_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,62}$"


class SpecModel(BaseModel):
    """Base of every client-written policy model: unknown fields are errors, not ignored."""

    model_config = ConfigDict(extra="forbid", use_attribute_docstrings=True)


Name = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
"""Template, product and connection names: lowercase slug, 1-63 characters."""

RuleId = Annotated[str, StringConstraints(pattern=SLUG_PATTERN)]
"""Rule ids: lowercase slug, unique within a policy; overrides and diffs address rules by id."""


class BoundKeyword(StrEnum):
    """Whole-field overridability: ``any`` value may be set, or the field is ``locked``."""

    ANY = "any"
    LOCKED = "locked"


def field_type(info: FieldInfo) -> Any:
    """The full type of a model field, constraints and validators included."""
    if not info.metadata:
        return info.annotation
    return Annotated[(info.annotation, *info.metadata)]  # type: ignore[valid-type]


def _check_cron(value: str) -> str:
    try:
        return parse_cron(value).expression
    except CronError as exc:
        raise PydanticCustomError("invalid_cron", "{reason}", {"reason": str(exc)}) from exc


def _check_timezone(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_+-]+(/[A-Za-z0-9_+-]+)*", value):
        try:
            ZoneInfo(value)
            return value
        except (ZoneInfoNotFoundError, ValueError):
            pass
    raise PydanticCustomError(
        "unknown_timezone",
        "unknown time zone '{name}'; use an IANA name such as 'Europe/Berlin'",
        {"name": value},
    )


CronText = Annotated[str, AfterValidator(_check_cron)]
"""A cron expression, validated and normalised (see :mod:`retrigger.policies.cron`)."""

TimeZoneName = Annotated[str, AfterValidator(_check_timezone)]
"""An IANA time zone name known to this system, e.g. ``Europe/Berlin``."""
