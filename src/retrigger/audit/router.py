"""``GET /v1/audit``: who changed what, when."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from retrigger.api.deps import ReadPrincipal, SessionDep
from retrigger.api.problems import responses
from retrigger.audit import service as audit_service
from retrigger.audit.schemas import AuditEventRead
from retrigger.schemas import Page, Timestamp, decode_cursor, encode_cursor

router = APIRouter(prefix="/audit", tags=["audit"])


@router.get("", response_model=Page[AuditEventRead], responses=responses(401, 403, 422))
async def list_audit_events(
    session: SessionDep,
    principal: ReadPrincipal,
    entity_type: Annotated[str | None, Query(max_length=32)] = None,
    entity_name: Annotated[str | None, Query(max_length=128)] = None,
    action: Annotated[str | None, Query(max_length=32)] = None,
    actor: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[Timestamp | None, Query()] = None,
    until: Annotated[Timestamp | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[AuditEventRead]:
    """List audit events visible to the key, newest first, with filters."""
    rows, next_id = await audit_service.list_(
        session,
        principal=principal,
        entity_type=entity_type,
        entity_name=entity_name,
        action=action,
        actor=actor,
        since=since,
        until=until,
        after_id=decode_cursor(cursor),
        limit=limit,
    )
    return Page(
        items=[AuditEventRead.model_validate(r) for r in rows], next_cursor=encode_cursor(next_id)
    )
