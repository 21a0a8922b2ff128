"""Shared pydantic building blocks: the Schema base, slugs, times, text, cursor pages."""

from __future__ import annotations

import base64
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, TypeVar

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)
from pydantic_core import PydanticCustomError

from retrigger.errors import InvalidConfig

T = TypeVar("T")

EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest instant a request may carry: no monitoring signal predates the Unix epoch, and
the bound keeps window arithmetic (``at - window``, windows are at most 3660 days) in range."""
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)
"""The latest instant a request may carry (``9999-12-31T23:59:59Z`` is a common "open end")."""


def _no_numbers(value: Any) -> Any:
    # pydantic would also take a number as Unix time; seconds vs milliseconds is a classic bug
    if type(value) is str or isinstance(value, datetime):
        return value
    raise PydanticCustomError(
        "datetime_type", "expected an RFC 3339 timestamp string with a time zone"
    )


def _in_range(value: datetime) -> datetime:
    if 1970 < value.year < 9999:  # the common case, decided without comparing instants (which
        return value  # calls the offset of both sides: slow over a batch of 1e5 times)
    # aware datetimes compare as instants without converting, so this cannot overflow
    if not EARLIEST <= value <= LATEST:
        raise PydanticCustomError(
            "datetime_range",
            "must lie between 1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z once converted to UTC",
        )
    return value


Timestamp = Annotated[
    AwareDatetime,
    BeforeValidator(_no_numbers),
    AfterValidator(_in_range),
    Field(
        description="RFC 3339 with a time zone (`Z` or an offset), between "
        "1970-01-01T00:00:00Z and 9999-12-31T23:59:59Z in UTC.",
        examples=["2026-11-28T21:00:00Z"],
    ),
]
"""Every time a request carries: zone required, range checked, a 422 naming the field otherwise.

Without a zone the time would be read as some local time; outside the range its UTC conversion
or the window arithmetic around it would overflow (a 500 instead of a 422).
"""


def format_loc(loc: Sequence[str | int]) -> str:
    """``("body", "rows", 3, "foo")`` -> ``rows[3].foo``, the way the docs name fields."""
    out = ""
    for part in loc[1:] if loc and loc[0] == "body" else loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


NUL = "\x00"


def reject_nul(value: str) -> str:
    """Refuse the NUL character: PostgreSQL text and JSONB cannot store it (SQLite can)."""
    if NUL in value:
        raise PydanticCustomError("nul_character", "must not contain the NUL character (\\u0000)")
    return value


NoNul = AfterValidator(reject_nul)
"""Put last in ``Annotated[str, StringConstraints(...), NoNul]`` (after the length checks)."""
Text = Annotated[str, NoNul]
"""A string without NUL characters: every free-form string a request stores is one."""


def find_nul(data: Any, path: tuple[str | int, ...] = ()) -> tuple[str | int, ...] | None:
    """The location of the first string (value or key) holding NUL in decoded JSON, if any."""
    if isinstance(data, str):
        return path if NUL in data else None
    if isinstance(data, Mapping):
        for key, item in data.items():
            if isinstance(key, str) and NUL in key:
                return (*path, key)
            found = find_nul(item, (*path, key))
            if found is not None:
                return found
    elif isinstance(data, list | tuple):
        for index, item in enumerate(data):
            found = find_nul(item, (*path, index))
            if found is not None:
                return found
    return None


def strip_nul(data: Any) -> Any:
    """Decoded JSON with every NUL character removed from strings and keys."""
    if isinstance(data, str):
        return data.replace(NUL, "") if NUL in data else data
    if isinstance(data, Mapping):
        return {strip_nul(k): strip_nul(v) for k, v in data.items()}
    if isinstance(data, list):
        return [strip_nul(v) for v in data]
    return data


Slug = Annotated[
    str,
    StringConstraints(min_length=1, max_length=63, pattern=r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$"),
    Field(
        description="Lowercase letters, digits and inner hyphens; 1-63 characters.",
        examples=["fraud-scorer"],
    ),
]


class Schema(BaseModel):
    """Base of response models: reads ORM attributes."""

    model_config = ConfigDict(from_attributes=True)


class InputSchema(BaseModel):
    """Base of client input: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, allow_inf_nan=False)


class Page(BaseModel, Generic[T]):
    """One page of a list, newest first; pass ``next_cursor`` as ``cursor`` for the next."""

    items: list[T]
    next_cursor: str | None = Field(None, description="Opaque cursor of the next page, if any.")


def encode_cursor(id_: int | None) -> str | None:
    if id_ is None:
        return None
    return base64.urlsafe_b64encode(f"id:{id_}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> int | None:
    """The id a cursor stands for; a tampered cursor is a 422 naming ``cursor``."""
    if cursor is None or cursor == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "id":
            raise ValueError(kind)
        result = int(value)
        if result < 1 or result > 2**63:
            raise ValueError(value)
        return result
    except (ValueError, UnicodeDecodeError):
        raise InvalidConfig(
            "invalid cursor",
            errors=[{"loc": ["query", "cursor"], "msg": "invalid cursor", "type": "value_error"}],
        ) from None
