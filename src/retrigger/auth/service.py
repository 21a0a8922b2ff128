"""API keys: create (token shown once), authenticate, list, revoke, and the first admin key."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.audit import service as audit_service
from retrigger.auth.errors import ApiKeyAlreadyRevoked, ApiKeyNotFound
from retrigger.auth.models import ApiKey
from retrigger.auth.repository import ApiKeyRepository
from retrigger.auth.schemas import ApiKeyCreate
from retrigger.auth.scopes import Principal, Scope
from retrigger.auth.tokens import generate_token, hash_secret, parse_token, secret_matches
from retrigger.db.types import utcnow
from retrigger.errors import Forbidden, InvalidConfig, Unauthenticated
from retrigger.teams import service as team_service
from retrigger.teams.models import Team

# last_used_at is a hint, not a log: write it at most this often per key
LAST_USED_RESOLUTION = timedelta(minutes=1)

# an arbitrary constant naming "retrigger bootstrap key" among PostgreSQL advisory locks (the
# migrations use 0x72746D67, the scheduler's leader its own)
BOOTSTRAP_LOCK = 0x72746B62


class _PrincipalCache:
    """Recently verified tokens, so a busy ingestion client costs no key lookup per request.

    Entries are keyed by the SHA-256 of the whole token and live ``TTL`` seconds; a revocation
    clears the cache of the process that revoked at once, other processes within ``TTL``.
    """

    TTL = 10.0
    MAX = 10_000

    def __init__(self) -> None:
        self._entries: dict[str, tuple[float, Principal]] = {}

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, digest: str, principal: Principal) -> None:
        if len(self._entries) >= self.MAX:
            self._entries.clear()
        self._entries[digest] = (time.monotonic() + self.TTL, principal)

    def clear(self) -> None:
        self._entries.clear()


PRINCIPALS = _PrincipalCache()


async def authenticate(session: AsyncSession, token: str) -> Principal:
    """The principal a token stands for; 401 for unknown, malformed or revoked keys."""
    digest = hash_secret(token)
    cached = PRINCIPALS.get(digest)
    if cached is not None:
        return cached
    parsed = parse_token(token)
    if parsed is None:
        raise Unauthenticated("malformed API key")
    key = await ApiKeyRepository(session).get_for_auth(parsed.key_id)
    if key is None or not secret_matches(parsed.secret, key.secret_hash):
        raise Unauthenticated("invalid API key")
    if key.revoked_at is not None:
        raise Unauthenticated("API key revoked")
    now = utcnow()
    if key.last_used_at is None or now - key.last_used_at > LAST_USED_RESOLUTION:
        key.last_used_at = now
        await session.flush()
    principal = Principal(
        key_id=key.key_id, team_id=key.team_id, scopes=frozenset(Scope(s) for s in key.scopes)
    )
    PRINCIPALS.put(digest, principal)
    return principal


async def create(
    session: AsyncSession, *, principal: Principal, key_in: ApiKeyCreate, token: str | None = None
) -> tuple[ApiKey, str]:
    """A new key and its token; team admins make keys for their own team only."""
    team: Team | None = None
    if key_in.team is not None:
        team = await team_service.get_visible_or_raise(
            session, principal=principal, name=key_in.team
        )
    elif not principal.is_org_wide:
        team = await session.get(Team, principal.team_id)
    team_id = team.id if team is not None else None
    if team_id is None and not principal.is_org_admin:
        raise Forbidden("only an org admin key can create org-wide keys")
    if token is None:
        _, token = generate_token()
    parsed = parse_token(token)
    if parsed is None:
        raise InvalidConfig("token does not have the rtk_<id>_<secret> form")
    key = ApiKey(
        key_id=parsed.key_id,
        secret_hash=hash_secret(parsed.secret),
        name=key_in.name,
        team_id=team_id,
        team=team,
        scopes=[str(s) for s in key_in.scopes],
        created_by=principal.key_id,
    )
    key = await ApiKeyRepository(session).add(key)
    await audit_service.record(
        session,
        principal=principal,
        action="create",
        entity_type="api_key",
        entity_name=key.key_id,
        team_id=team_id,
        diff={"name": key.name, "scopes": key.scopes, "team": key.team_name},
    )
    return key, token


async def get_visible_or_raise(
    session: AsyncSession, *, principal: Principal, key_id: str
) -> ApiKey:
    key = await ApiKeyRepository(session).get_by_key_id(key_id)
    if key is None or not principal.can_see_team(key.team_id):
        raise ApiKeyNotFound(f"API key '{key_id}' not found")
    return key


async def list_(
    session: AsyncSession,
    *,
    principal: Principal,
    include_revoked: bool,
    after_id: int | None,
    limit: int,
) -> tuple[Sequence[ApiKey], int | None]:
    return await ApiKeyRepository(session).list_(
        team_id=None if principal.is_org_wide else principal.team_id,
        include_revoked=include_revoked,
        after_id=after_id,
        limit=limit,
    )


async def revoke(
    session: AsyncSession, *, principal: Principal, key_id: str, reason: str | None = None
) -> ApiKey:
    key = await get_visible_or_raise(session, principal=principal, key_id=key_id)
    if key.revoked_at is not None:
        raise ApiKeyAlreadyRevoked(f"API key '{key_id}' is already revoked")
    if key.team_id is None and not principal.is_org_admin:
        raise Forbidden("only an org admin key can revoke org-wide keys")
    key.revoked_at = utcnow()
    await session.flush()
    PRINCIPALS.clear()
    await audit_service.record(
        session,
        principal=principal,
        action="revoke",
        entity_type="api_key",
        entity_name=key.key_id,
        team_id=key.team_id,
        reason=reason,
    )
    return key


async def _serialize_bootstrap(session: AsyncSession) -> None:
    """Make concurrent bootstraps take turns until the caller's transaction ends.

    PostgreSQL: a transaction-level advisory lock, so API replicas starting together on an empty
    database check and create one after the other (the migrations queue the same way). SQLite
    needs nothing: the unit of work began with BEGIN IMMEDIATE, which already holds the write lock
    across the count and the insert.
    """
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(func.pg_advisory_xact_lock(BOOTSTRAP_LOCK)))


async def ensure_bootstrap_key(session: AsyncSession, *, token: str | None = None) -> str | None:
    """On an empty key table, create the org admin key; returns its token, or None if keys exist.

    Safe when several processes call it at once: exactly one creates the key (the lock is held
    until the caller commits, so a later caller's count sees that key).
    """
    await _serialize_bootstrap(session)
    if await ApiKeyRepository(session).count() > 0:
        return None
    from retrigger.auth.scopes import SYSTEM

    _, token = await create(
        session,
        principal=SYSTEM,
        key_in=ApiKeyCreate(name="bootstrap-admin", scopes=[Scope.admin]),
        token=token,
    )
    return token
