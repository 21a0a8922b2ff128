"""The ``audit_events`` table: append-only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from retrigger.db.base import Base, IdMixin
from retrigger.db.types import BigIntId, JSONType, UTCDateTime, utcnow


class AuditEvent(IdMixin, Base):
    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_entity", "entity_type", "entity_name"),)

    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, nullable=False, index=True)
    actor: Mapped[str] = mapped_column(String(64), nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    entity_type: Mapped[str] = mapped_column(String(32), nullable=False)
    entity_name: Mapped[str] = mapped_column(String(128), nullable=False)
    # no FK: the trail outlives what it describes (a deleted team keeps its history)
    team_id: Mapped[int | None] = mapped_column(BigIntId, nullable=True, index=True)
    diff: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict, nullable=False)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)
