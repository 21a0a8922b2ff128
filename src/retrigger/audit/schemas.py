"""Audit event as served by ``GET /v1/audit``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import Field

from retrigger.schemas import Schema


class AuditEventRead(Schema):
    id: int
    at: datetime
    actor: str = Field(description="Key id of the caller, `system`, `cli` or `anonymous`.")
    action: str = Field(examples=["create", "update", "delete", "revoke"])
    entity_type: str = Field(examples=["product"])
    entity_name: str = Field(examples=["fraud-scorer"])
    diff: dict[str, Any] = Field(description="Changed fields as {field: {old, new}}.")
    reason: str | None = None
