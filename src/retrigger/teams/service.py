"""Teams: created and changed by org admins; a team key sees only its own team."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.audit import service as audit_service
from retrigger.auth.scopes import Principal
from retrigger.errors import Forbidden
from retrigger.teams.errors import TeamInUse, TeamNameTaken, TeamNotFound
from retrigger.teams.models import Team
from retrigger.teams.repository import TeamRepository
from retrigger.teams.schemas import TeamCreate, TeamUpdate


def _require_org_admin(principal: Principal) -> None:
    if not principal.is_org_admin:
        raise Forbidden("only an org admin key can create, change or delete teams")


async def get_visible_or_raise(session: AsyncSession, *, principal: Principal, name: str) -> Team:
    """The team, or 404 if it does not exist or the key may not see it."""
    team = await TeamRepository(session).get_by_name(name)
    if team is None or not principal.can_see_team(team.id):
        raise TeamNotFound(f"team '{name}' not found")
    return team


async def list_(
    session: AsyncSession, *, principal: Principal, after_id: int | None, limit: int
) -> tuple[Sequence[Team], int | None]:
    return await TeamRepository(session).list_(
        only_id=None if principal.is_org_wide else principal.team_id,
        after_id=after_id,
        limit=limit,
    )


async def create(session: AsyncSession, *, principal: Principal, team_in: TeamCreate) -> Team:
    _require_org_admin(principal)
    repo = TeamRepository(session)
    if await repo.get_by_name(team_in.name) is not None:
        raise TeamNameTaken(
            f"team '{team_in.name}' already exists",
            errors=[{"loc": ["body", "name"], "msg": "already exists", "type": "conflict"}],
        )
    team = await repo.add(Team(name=team_in.name, description=team_in.description))
    await audit_service.record(
        session,
        principal=principal,
        action="create",
        entity_type="team",
        entity_name=team.name,
        team_id=team.id,
        diff=team_in.model_dump(),
    )
    return team


async def update(
    session: AsyncSession, *, principal: Principal, name: str, team_in: TeamUpdate
) -> Team:
    _require_org_admin(principal)
    team = await get_visible_or_raise(session, principal=principal, name=name)
    before = {"description": team.description}
    if "description" in team_in.model_fields_set and team_in.description is not None:
        team.description = team_in.description
    await session.flush()
    diff = audit_service.field_diff(before, {"description": team.description})
    if diff:
        await audit_service.record(
            session,
            principal=principal,
            action="update",
            entity_type="team",
            entity_name=team.name,
            team_id=team.id,
            diff=diff,
        )
    return team


async def delete_(session: AsyncSession, *, principal: Principal, name: str) -> None:
    """Delete an empty team; 409 while it still owns products or live keys, or a connection is
    restricted to it."""
    _require_org_admin(principal)
    team = await get_visible_or_raise(session, principal=principal, name=name)
    repo = TeamRepository(session)
    if await repo.in_use(team.id):
        raise TeamInUse(
            f"team '{name}' still owns products or active API keys, or connections are "
            "restricted to it"
        )
    from retrigger.auth.models import ApiKey

    await session.execute(delete(ApiKey).where(ApiKey.team_id == team.id))
    await repo.delete(team)
    await audit_service.record(
        session,
        principal=principal,
        action="delete",
        entity_type="team",
        entity_name=name,
        team_id=team.id,
    )
