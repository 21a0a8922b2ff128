"""The first org admin key: created once on an empty database, even when several API replicas
start together (each with its own engine, as separate processes have), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import delete, select

from retrigger.auth import service as auth_service
from retrigger.auth.models import ApiKey
from retrigger.auth.scopes import Scope
from retrigger.auth.tokens import generate_token
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from tests.fixtures.db import FreshDatabase

pytestmark = pytest.mark.asyncio(loop_scope="session")

REPLICAS = 4
ROUNDS = 5
"""Each round empties the key table and starts the replicas again: more chances to interleave."""


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgresql"])
async def empty_db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A migrated database of each kind with no API key in it."""
    async with FreshDatabase(request.param, tmp_path) as url:
        db = Database.from_settings(Settings(database_url=url))
        try:
            await migrate.upgrade(db.engine)
            yield db
        finally:
            await db.dispose()


async def _replicas_start(url: str, token: str | None) -> list[str | None]:
    """What ``ensure_bootstrap_key`` returns in each of ``REPLICAS`` processes starting at once."""
    replicas = [Database.from_settings(Settings(database_url=url)) for _ in range(REPLICAS)]

    async def start(db: Database) -> str | None:
        async with db.session_scope() as session:
            return await auth_service.ensure_bootstrap_key(session, token=token)

    try:
        # a connection per replica up front, so they race on the bootstrap and not on connecting
        for db in replicas:
            async with db.engine.connect():
                pass
        return list(await asyncio.gather(*(start(db) for db in replicas)))
    finally:
        for db in replicas:
            await db.dispose()


async def _keys(db: Database) -> list[ApiKey]:
    async with db.session_scope() as session:
        return list((await session.execute(select(ApiKey))).scalars())


async def _empty_keys(db: Database) -> None:
    async with db.session_scope() as session:
        await session.execute(delete(ApiKey))


class TestEnsureBootstrapKey:
    async def test_concurrent_replicas_create_one_admin_key(self, empty_db: Database) -> None:
        url = empty_db.engine.url.render_as_string(hide_password=False)
        for _ in range(ROUNDS):
            await _empty_keys(empty_db)
            tokens = await _replicas_start(url, None)
            created = [t for t in tokens if t is not None]
            assert len(created) == 1, tokens
            keys = await _keys(empty_db)
            assert [(k.name, k.scopes, k.team_id) for k in keys] == [
                ("bootstrap-admin", [Scope.admin.value], None)
            ]
            async with empty_db.session_scope() as session:
                principal = await auth_service.authenticate(session, created[0])
            assert principal.key_id == keys[0].key_id
            assert principal.is_org_admin

    async def test_concurrent_replicas_with_a_configured_token(self, empty_db: Database) -> None:
        # RETRIGGER_BOOTSTRAP_ADMIN_TOKEN from one Secret in every replica: one creates the key,
        # the others find it (no unique-violation crash at startup)
        url = empty_db.engine.url.render_as_string(hide_password=False)
        key_id, token = generate_token()
        tokens = await _replicas_start(url, token)
        assert sorted(tokens, key=lambda t: t is None) == [token] + [None] * (REPLICAS - 1)
        assert [k.key_id for k in await _keys(empty_db)] == [key_id]

    async def test_existing_keys_leave_the_table_alone(self, empty_db: Database) -> None:
        async with empty_db.session_scope() as session:
            first = await auth_service.ensure_bootstrap_key(session)
        async with empty_db.session_scope() as session:
            again = await auth_service.ensure_bootstrap_key(session, token=generate_token()[1])
        assert first is not None
        assert again is None
        assert len(await _keys(empty_db)) == 1
