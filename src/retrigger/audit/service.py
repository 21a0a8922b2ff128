"""Recording and reading the audit trail. Services call ``record`` in the same transaction."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.audit.models import AuditEvent
from retrigger.audit.repository import AuditRepository
from retrigger.auth.scopes import Principal


def field_diff(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """``{field: {"old": .., "new": ..}}`` for every field whose value changed."""
    out: dict[str, Any] = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if old != new:
            out[key] = {"old": old, "new": new}
    return out


async def record(
    session: AsyncSession,
    *,
    principal: Principal,
    action: str,
    entity_type: str,
    entity_name: str,
    team_id: int | None,
    diff: Mapping[str, Any] | None = None,
    reason: str | None = None,
) -> AuditEvent:
    """Append one event; never edits or deletes."""
    event = AuditEvent(
        actor=principal.actor,
        action=action,
        entity_type=entity_type,
        entity_name=entity_name,
        team_id=team_id,
        diff=dict(diff or {}),
        reason=reason,
    )
    return await AuditRepository(session).add(event)


async def list_(
    session: AsyncSession,
    *,
    principal: Principal,
    entity_type: str | None = None,
    entity_name: str | None = None,
    action: str | None = None,
    actor: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_id: int | None = None,
    limit: int = 50,
) -> tuple[Sequence[AuditEvent], int | None]:
    """Events visible to the principal, newest first."""
    return await AuditRepository(session).search(
        team_id=None if principal.is_org_wide else principal.team_id,
        entity_type=entity_type,
        entity_name=entity_name,
        action=action,
        actor=actor,
        since=since,
        until=until,
        after_id=after_id,
        limit=limit,
    )
