"""``/v1/teams``: org admins manage teams; team keys read their own."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from retrigger.api.deps import AdminPrincipal, ReadPrincipal, SessionDep
from retrigger.api.problems import responses
from retrigger.schemas import Page, Slug, decode_cursor, encode_cursor
from retrigger.teams import service as team_service
from retrigger.teams.models import Team
from retrigger.teams.schemas import TeamCreate, TeamRead, TeamUpdate

router = APIRouter(prefix="/teams", tags=["teams"])


@router.get("", response_model=Page[TeamRead], responses=responses(401, 403, 422))
async def list_teams(
    session: SessionDep,
    principal: ReadPrincipal,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[TeamRead]:
    """List teams visible to the key (all of them for org-wide keys)."""
    rows, next_id = await team_service.list_(
        session, principal=principal, after_id=decode_cursor(cursor), limit=limit
    )
    return Page(
        items=[TeamRead.model_validate(r) for r in rows], next_cursor=encode_cursor(next_id)
    )


@router.post(
    "",
    status_code=201,
    response_model=TeamRead,
    responses=responses(400, 401, 403, 409, 413, 415, 422),
)
async def create_team(body: TeamCreate, session: SessionDep, principal: AdminPrincipal) -> Team:
    """Create a team (org admin keys only)."""
    return await team_service.create(session, principal=principal, team_in=body)


@router.get("/{team}", response_model=TeamRead, responses=responses(401, 403, 404, 422))
async def get_team(team: Slug, session: SessionDep, principal: ReadPrincipal) -> Team:
    """Read one team."""
    return await team_service.get_visible_or_raise(session, principal=principal, name=team)


@router.patch(
    "/{team}", response_model=TeamRead, responses=responses(400, 401, 403, 404, 413, 415, 422)
)
async def update_team(
    team: Slug, body: TeamUpdate, session: SessionDep, principal: AdminPrincipal
) -> Team:
    """Change a team's description (org admin keys only)."""
    return await team_service.update(session, principal=principal, name=team, team_in=body)


@router.delete("/{team}", status_code=204, responses=responses(401, 403, 404, 409, 422))
async def delete_team(team: Slug, session: SessionDep, principal: AdminPrincipal) -> Response:
    """Delete a team that owns no products and no active keys (org admin keys only)."""
    await team_service.delete_(session, principal=principal, name=team)
    return Response(status_code=204)
