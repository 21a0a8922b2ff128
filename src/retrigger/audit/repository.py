"""Queries over ``audit_events``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from retrigger.audit.models import AuditEvent
from retrigger.db.repository import RepositoryBase


class AuditRepository(RepositoryBase[AuditEvent]):
    model = AuditEvent

    async def search(
        self,
        *,
        team_id: int | None,
        entity_type: str | None,
        entity_name: str | None,
        action: str | None,
        actor: str | None,
        since: datetime | None,
        until: datetime | None,
        after_id: int | None,
        limit: int,
    ) -> tuple[Sequence[AuditEvent], int | None]:
        stmt = self.select()
        if team_id is not None:
            stmt = stmt.where(AuditEvent.team_id == team_id)
        if entity_type:
            stmt = stmt.where(AuditEvent.entity_type == entity_type)
        if entity_name:
            stmt = stmt.where(AuditEvent.entity_name == entity_name)
        if action:
            stmt = stmt.where(AuditEvent.action == action)
        if actor:
            stmt = stmt.where(AuditEvent.actor == actor)
        if since:
            stmt = stmt.where(AuditEvent.at >= since)
        if until:
            stmt = stmt.where(AuditEvent.at < until)
        return await self.page(stmt, after_id=after_id, limit=limit)
