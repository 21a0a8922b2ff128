"""Shared pydantic building blocks: the Schema base, slugs, cursor pages."""

from __future__ import annotations

import base64
from typing import Annotated, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from retrigger.errors import InvalidConfig

T = TypeVar("T")

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
