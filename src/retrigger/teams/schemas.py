"""Team input and output."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field

from retrigger.schemas import InputSchema, Schema, Slug


class TeamCreate(InputSchema):
    name: Slug = Field(examples=["risk-ml"])
    description: Annotated[str, Field(max_length=2000)] = ""


class TeamUpdate(InputSchema):
    description: Annotated[str, Field(max_length=2000)] | None = None


class TeamRead(Schema):
    id: int
    name: str
    description: str
    created_at: datetime
    updated_at: datetime
