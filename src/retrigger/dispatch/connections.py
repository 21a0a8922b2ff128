"""Connections: named orchestrator endpoints, validated against their adapter when saved, and
the teams whose products may launch on them (none listed: every team).

Team scoping is checked three times: a team key sees only the connections its team may use, a
policy is saved only with a target its product's team may use, and a run is launched only if
that still holds (a connection's teams may change after the policy was saved).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.audit import service as audit_service
from retrigger.auth.scopes import Principal
from retrigger.config import Settings
from retrigger.db.session import settings_of
from retrigger.dispatch import secrets
from retrigger.dispatch.errors import ConnectionInUse, ConnectionNameTaken, ConnectionNotFound
from retrigger.dispatch.lifecycle import ACTIVE, RunStatus
from retrigger.dispatch.models import Connection, ConnectionTeam, Run
from retrigger.dispatch.orchestrators import get_orchestrator
from retrigger.dispatch.orchestrators.base import AuthType, ConnectionConfig
from retrigger.dispatch.schemas import AuthOut, ConnectionCreate, ConnectionIn, ConnectionRead
from retrigger.errors import Forbidden, InvalidConfig, OrchestratorRejected
from retrigger.products.models import Product
from retrigger.teams.models import Team

_NEEDS_USERNAME = frozenset({AuthType.BASIC, AuthType.AIRFLOW_JWT})


class ConnectionNotUsable(OrchestratorRejected):
    """A run's product belongs to a team that may not (or no longer) use its connection; the
    run fails at once instead of launching."""


def _auth_error(field: str, msg: str) -> InvalidConfig:
    return InvalidConfig(
        msg, errors=[{"loc": ["body", "auth", field], "msg": msg, "type": "value_error"}]
    )


def validate(conn: ConnectionIn, settings: Settings) -> dict[str, Any]:
    """Check kind, auth and options against the adapter; the options as stored."""
    adapter = get_orchestrator(conn.kind)
    if conn.base_url.username or conn.base_url.password:
        raise InvalidConfig(
            "credentials in base_url would be stored and shown; use auth.secret_ref",
            errors=[
                {"loc": ["body", "base_url"], "msg": "no user:password@", "type": "value_error"}
            ],
        )
    auth = conn.auth
    if auth.type not in adapter.auth_types:
        allowed = ", ".join(sorted(a.value for a in adapter.auth_types))
        raise _auth_error("type", f"a {conn.kind} connection takes auth {allowed}")
    if auth.type in _NEEDS_USERNAME and not auth.username:
        raise _auth_error("username", f"auth {auth.type.value} needs a username")
    if auth.type is not AuthType.NONE and auth.secret_ref is None:
        raise _auth_error("secret_ref", f"auth {auth.type.value} needs a secret_ref")
    if auth.secret_ref is not None:
        secrets.check_ref(auth.secret_ref, settings)
    options = adapter.parse_options(conn.options)
    return options.model_dump(mode="json", exclude_unset=True)


def _apply(row: Connection, conn: ConnectionIn, options: dict[str, Any]) -> None:
    row.kind = conn.kind
    row.base_url = str(conn.base_url).rstrip("/")
    row.auth_type = conn.auth.type.value
    row.username = conn.auth.username
    row.secret_ref = conn.auth.secret_ref
    row.verify_tls = conn.verify_tls
    row.timeout_seconds = conn.timeout_seconds
    row.options = options
    row.description = conn.description


def _snapshot(row: Connection, teams: Sequence[str]) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "base_url": row.base_url,
        "auth_type": row.auth_type,
        "username": row.username,
        "secret_ref": row.secret_ref,
        "verify_tls": row.verify_tls,
        "timeout_seconds": row.timeout_seconds,
        "options": row.options,
        "teams": list(teams),
    }


def _require_org_admin(principal: Principal) -> None:
    # a connection lends its secret to every run on it: a team's admin key must not create one
    # for other teams, nor read arbitrary secret references through it
    if not principal.is_org_admin:
        raise Forbidden("only an org admin key can change connections")


# --- teams ------------------------------------------------------------------------------------


async def _team_ids(session: AsyncSession, names: Sequence[str]) -> list[int]:
    """The ids of the named teams; 422 naming ``teams[i]`` for each unknown one."""
    rows = (await session.execute(select(Team.id, Team.name).where(Team.name.in_(names)))).all()
    by_name = {name: team_id for team_id, name in rows}
    errors = [
        {"loc": ["body", "teams", i], "msg": f"unknown team '{name}'", "type": "unknown_team"}
        for i, name in enumerate(names)
        if name not in by_name
    ]
    if errors:
        raise InvalidConfig(f"{len(errors)} unknown team(s)", errors=errors)
    return sorted({by_name[name] for name in names})


async def team_names(session: AsyncSession, connection_ids: Iterable[int]) -> dict[int, list[str]]:
    """The team names of each connection, sorted (a connection missing here is org-wide)."""
    ids = sorted(set(connection_ids))
    if not ids:
        return {}
    rows = await session.execute(
        select(ConnectionTeam.connection_id, Team.name)
        .join(Team, Team.id == ConnectionTeam.team_id)
        .where(ConnectionTeam.connection_id.in_(ids))
        .order_by(Team.name)
    )
    names: dict[int, list[str]] = {}
    for connection_id, name in rows.all():
        names.setdefault(connection_id, []).append(name)
    return names


async def _set_teams(session: AsyncSession, row: Connection, team_ids: Sequence[int]) -> None:
    await session.execute(delete(ConnectionTeam).where(ConnectionTeam.connection_id == row.id))
    session.add_all(ConnectionTeam(connection_id=row.id, team_id=t) for t in team_ids)
    await session.flush()


def _usable_by(team_id: int | None) -> ColumnElement[bool]:
    """Where-clause: connections a product of ``team_id`` may launch on."""
    org_wide = ~exists().where(ConnectionTeam.connection_id == Connection.id)
    if team_id is None:
        return org_wide
    listed = exists().where(
        ConnectionTeam.connection_id == Connection.id, ConnectionTeam.team_id == team_id
    )
    return or_(org_wide, listed)


async def usable(session: AsyncSession, row: Connection, team_id: int | None) -> bool:
    """Whether products of ``team_id`` may launch on ``row``."""
    query = select(Connection.id).where(Connection.id == row.id, _usable_by(team_id))
    return await session.scalar(query) is not None


async def _team_name(session: AsyncSession, team_id: int) -> str:
    return await session.scalar(select(Team.name).where(Team.id == team_id)) or "?"


# --- reads ------------------------------------------------------------------------------------


async def get_by_name(session: AsyncSession, name: str) -> Connection | None:
    result = await session.execute(select(Connection).where(Connection.name == name))
    return result.scalar_one_or_none()


async def get_or_raise(session: AsyncSession, name: str) -> Connection:
    row = await get_by_name(session, name)
    if row is None:
        raise ConnectionNotFound(f"connection '{name}' not found")
    return row


async def get_visible_or_raise(
    session: AsyncSession, *, principal: Principal, name: str
) -> Connection:
    """The connection, or 404 alike for "does not exist" and "not usable by the key's team"."""
    row = await get_by_name(session, name)
    if row is None or not (principal.is_org_wide or await usable(session, row, principal.team_id)):
        raise ConnectionNotFound(f"connection '{name}' not found")
    return row


async def list_(session: AsyncSession, *, principal: Principal) -> Sequence[Connection]:
    """Every connection for org-wide keys; those its team may use for a team key."""
    query = select(Connection).order_by(Connection.name)
    if not principal.is_org_wide:
        query = query.where(_usable_by(principal.team_id))
    result = await session.execute(query)
    return result.scalars().all()


# --- writes -----------------------------------------------------------------------------------


async def create(
    session: AsyncSession, *, principal: Principal, conn: ConnectionCreate, settings: Settings
) -> Connection:
    """Add a connection; 409 on a taken name, 422 naming the field on bad kind/auth/options,
    secret reference or team."""
    _require_org_admin(principal)
    options = validate(conn, settings)
    team_ids = await _team_ids(session, conn.teams or [])
    if await get_by_name(session, conn.name) is not None:
        raise ConnectionNameTaken(f"connection '{conn.name}' already exists")
    row = Connection(name=conn.name)
    _apply(row, conn, options)
    session.add(row)
    await session.flush()
    await _set_teams(session, row, team_ids)
    snapshot = _snapshot(row, sorted(conn.teams or []))
    await audit_service.record(
        session,
        principal=principal,
        action="create",
        entity_type="connection",
        entity_name=row.name,
        team_id=None,
        diff={k: {"old": None, "new": v} for k, v in snapshot.items()},
    )
    return row


async def replace(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    conn: ConnectionIn,
    settings: Settings,
) -> Connection:
    """Replace a connection's settings (its teams only when given); runs already launched keep
    their external ids."""
    _require_org_admin(principal)
    options = validate(conn, settings)
    row = await get_or_raise(session, name)
    team_ids = await _team_ids(session, conn.teams) if conn.teams is not None else None
    if conn.kind != row.kind:
        active = await session.scalar(
            select(func.count()).where(
                Run.connection_id == row.id, Run.state.in_([s.value for s in ACTIVE])
            )
        )
        if active:
            raise ConnectionInUse(
                f"connection '{name}' has {active} active run(s); its kind cannot change now"
            )
    teams_before = (await team_names(session, [row.id])).get(row.id, [])
    before = _snapshot(row, teams_before)
    _apply(row, conn, options)
    await session.flush()
    if team_ids is not None:
        await _set_teams(session, row, team_ids)
    teams_after = sorted(conn.teams) if conn.teams is not None else teams_before
    await audit_service.record(
        session,
        principal=principal,
        action="update",
        entity_type="connection",
        entity_name=name,
        team_id=None,
        diff=audit_service.field_diff(before, _snapshot(row, teams_after)),
    )
    return row


async def delete_(session: AsyncSession, *, principal: Principal, name: str) -> None:
    """Delete a connection no run refers to."""
    _require_org_admin(principal)
    row = await get_or_raise(session, name)
    used = await session.scalar(select(func.count()).where(Run.connection_id == row.id))
    if used:
        raise ConnectionInUse(f"connection '{name}' is used by {used} run(s); it cannot be deleted")
    await session.delete(row)
    await session.flush()
    await audit_service.record(
        session,
        principal=principal,
        action="delete",
        entity_type="connection",
        entity_name=name,
        team_id=None,
    )


async def to_read(session: AsyncSession, row: Connection) -> ConnectionRead:
    return (await to_reads(session, [row]))[0]


async def to_reads(session: AsyncSession, rows: Sequence[Connection]) -> list[ConnectionRead]:
    teams = await team_names(session, [row.id for row in rows])
    return [
        ConnectionRead(
            name=row.name,
            kind=row.kind,
            base_url=row.base_url,
            auth=AuthOut(type=row.auth_type, username=row.username, secret_ref=row.secret_ref),
            verify_tls=row.verify_tls,
            timeout_seconds=row.timeout_seconds,
            options=dict(row.options),
            description=row.description,
            teams=teams.get(row.id, []),
            created_at=row.created_at,
            updated_at=row.updated_at,
        )
        for row in rows
    ]


# --- use --------------------------------------------------------------------------------------


async def check_target(
    session: AsyncSession, *, name: str, product: Product | None, loc: Sequence[str | int]
) -> None:
    """A policy target's connection must exist and, for a product's policy, be usable by the
    product's team; 422 at ``loc`` otherwise (a team key learns no more than "not usable")."""
    row = await get_by_name(session, name)
    if row is None:
        msg = f"connection '{name}' does not exist"
    elif product is not None and not await usable(session, row, product.team_id):
        team = await _team_name(session, product.team_id)
        msg = f"connection '{name}' is not available to team '{team}'"
    else:
        return
    raise InvalidConfig(msg, errors=[{"loc": list(loc), "msg": msg, "type": "unknown_connection"}])


async def launch_config(session: AsyncSession, row: Connection, run: Run) -> ConnectionConfig:
    """The adapter's view of ``run``'s connection. A run not launched yet is checked against
    the connection's teams first: ConnectionNotUsable (a permanent failure) if its product's
    team may no longer use it. Launched runs are still followed and cancelled there."""
    if RunStatus(run.state) in (RunStatus.PENDING, RunStatus.AWAITING_APPROVAL):
        product = await session.get(Product, run.product_id)
        team_id = product.team_id if product is not None else None
        if not await usable(session, row, team_id):
            team = await _team_name(session, team_id) if team_id is not None else "?"
            raise ConnectionNotUsable(
                f"connection '{row.name}' is not available to team '{team}' (its teams changed "
                "after the policy was saved); nothing launched"
            )
    return to_config(row, settings_of(session))


def to_config(row: Connection, settings: Settings) -> ConnectionConfig:
    """The adapter's view of a connection, secret resolved; SecretUnavailable (or SecretRefused)
    if it cannot be."""
    adapter = get_orchestrator(row.kind)
    return ConnectionConfig(
        name=row.name,
        kind=row.kind,
        base_url=row.base_url,
        auth=AuthType(row.auth_type),
        username=row.username,
        secret=secrets.resolve(row.secret_ref, settings),
        verify_tls=row.verify_tls,
        timeout_seconds=row.timeout_seconds,
        options=adapter.parse_options(row.options),
    )
