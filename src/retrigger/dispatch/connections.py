"""Connections: named orchestrator endpoints, validated against their adapter when saved."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.audit import service as audit_service
from retrigger.auth.scopes import Principal
from retrigger.dispatch import secrets
from retrigger.dispatch.errors import ConnectionInUse, ConnectionNameTaken, ConnectionNotFound
from retrigger.dispatch.lifecycle import ACTIVE
from retrigger.dispatch.models import Connection, Run
from retrigger.dispatch.orchestrators import get_orchestrator
from retrigger.dispatch.orchestrators.base import AuthType, ConnectionConfig
from retrigger.dispatch.schemas import AuthOut, ConnectionCreate, ConnectionIn, ConnectionRead
from retrigger.errors import InvalidConfig

_NEEDS_USERNAME = frozenset({AuthType.BASIC, AuthType.AIRFLOW_JWT})


def _auth_error(field: str, msg: str) -> InvalidConfig:
    return InvalidConfig(
        msg, errors=[{"loc": ["body", "auth", field], "msg": msg, "type": "value_error"}]
    )


def validate(conn: ConnectionIn) -> dict[str, Any]:
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
        secrets.check_ref(auth.secret_ref)
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


def _snapshot(row: Connection) -> dict[str, Any]:
    return {
        "kind": row.kind,
        "base_url": row.base_url,
        "auth_type": row.auth_type,
        "username": row.username,
        "secret_ref": row.secret_ref,
        "verify_tls": row.verify_tls,
        "timeout_seconds": row.timeout_seconds,
        "options": row.options,
    }


async def get_by_name(session: AsyncSession, name: str) -> Connection | None:
    result = await session.execute(select(Connection).where(Connection.name == name))
    return result.scalar_one_or_none()


async def get_or_raise(session: AsyncSession, name: str) -> Connection:
    row = await get_by_name(session, name)
    if row is None:
        raise ConnectionNotFound(f"connection '{name}' not found")
    return row


async def list_(session: AsyncSession) -> Sequence[Connection]:
    result = await session.execute(select(Connection).order_by(Connection.name))
    return result.scalars().all()


async def create(
    session: AsyncSession, *, principal: Principal, conn: ConnectionCreate
) -> Connection:
    """Add a connection; 409 on a taken name, 422 naming the field on bad kind/auth/options."""
    options = validate(conn)
    if await get_by_name(session, conn.name) is not None:
        raise ConnectionNameTaken(f"connection '{conn.name}' already exists")
    row = Connection(name=conn.name)
    _apply(row, conn, options)
    session.add(row)
    await session.flush()
    await audit_service.record(
        session,
        principal=principal,
        action="create",
        entity_type="connection",
        entity_name=row.name,
        team_id=None,
        diff={k: {"old": None, "new": v} for k, v in _snapshot(row).items()},
    )
    return row


async def replace(
    session: AsyncSession, *, principal: Principal, name: str, conn: ConnectionIn
) -> Connection:
    """Replace a connection's settings; runs already launched keep their external ids."""
    options = validate(conn)
    row = await get_or_raise(session, name)
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
    before = _snapshot(row)
    _apply(row, conn, options)
    await session.flush()
    await audit_service.record(
        session,
        principal=principal,
        action="update",
        entity_type="connection",
        entity_name=name,
        team_id=None,
        diff=audit_service.field_diff(before, _snapshot(row)),
    )
    return row


async def delete(session: AsyncSession, *, principal: Principal, name: str) -> None:
    """Delete a connection no run refers to."""
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


def to_read(row: Connection) -> ConnectionRead:
    return ConnectionRead(
        name=row.name,
        kind=row.kind,
        base_url=row.base_url,
        auth=AuthOut(type=row.auth_type, username=row.username, secret_ref=row.secret_ref),
        verify_tls=row.verify_tls,
        timeout_seconds=row.timeout_seconds,
        options=dict(row.options),
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


def to_config(row: Connection) -> ConnectionConfig:
    """The adapter's view of a connection, secret resolved; SecretUnavailable if it cannot be."""
    adapter = get_orchestrator(row.kind)
    return ConnectionConfig(
        name=row.name,
        kind=row.kind,
        base_url=row.base_url,
        auth=AuthType(row.auth_type),
        username=row.username,
        secret=secrets.resolve(row.secret_ref),
        verify_tls=row.verify_tls,
        timeout_seconds=row.timeout_seconds,
        options=adapter.parse_options(row.options),
    )
