"""API key input and output; the token appears only in the creation response."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import Field, field_validator

from retrigger.auth.scopes import Scope
from retrigger.schemas import InputSchema, Schema, Slug


class ApiKeyCreate(InputSchema):
    name: Annotated[str, Field(min_length=1, max_length=100, examples=["alertmanager-ingest"])]
    team: Slug | None = Field(
        None, description="Team the key belongs to; omit for an org-wide key (org admins only)."
    )
    scopes: list[Scope] = Field(min_length=1, max_length=4, examples=[["ingest"]])

    @field_validator("scopes")
    @classmethod
    def _unique(cls, value: list[Scope]) -> list[Scope]:
        return sorted(set(value))


class ApiKeyRead(Schema):
    id: int
    key_id: str = Field(description="Public part of the token, `rtk_<key_id>_...`.")
    name: str
    team: str | None = Field(None, validation_alias="team_name")
    scopes: list[Scope]
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    last_used_at: datetime | None


class ApiKeyCreated(ApiKeyRead):
    token: str = Field(description="The secret token. Shown once; only its hash is stored.")
