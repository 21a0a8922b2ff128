"""One scheduler leader among processes, re-validated on every pass.

PostgreSQL: killing the leader's session frees the advisory lock; the next pass of the old
leader must notice and step down, so two schedulers never both believe they lead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest
import pytest_asyncio
from sqlalchemy.engine import make_url

from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.decisions.leader import ADVISORY_KEY, LeaderLock
from tests.fixtures.db import FreshDatabase

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def pg(tmp_path: Path) -> AsyncIterator[tuple[Settings, list[Database]]]:
    """Settings for a fresh PostgreSQL database, and a list of the ``Database``s to dispose."""
    async with FreshDatabase("postgresql", tmp_path) as url:
        dbs: list[Database] = []
        try:
            yield Settings(database_url=url), dbs
        finally:
            for db in dbs:
                await db.dispose()


async def holders(url: str) -> list[int]:
    """Backends holding the scheduler's advisory lock, seen from a separate connection."""
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
    )
    try:
        rows = await conn.fetch(
            "SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted "
            "AND objid = $1 AND objsubid = 1",
            ADVISORY_KEY,
        )
        return [int(r["pid"]) for r in rows]
    finally:
        await conn.close()


async def terminate(url: str, pid: int) -> None:
    parsed = make_url(url)
    conn = await asyncpg.connect(
        host=parsed.host, port=parsed.port or 5432, user=parsed.username, database=parsed.database
    )
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()


class TestPostgresLeader:
    async def test_one_leader_at_a_time(self, pg: tuple[Settings, list[Database]]) -> None:
        settings, dbs = pg
        dbs.extend([Database.from_settings(settings), Database.from_settings(settings)])
        first, second = (LeaderLock(db, settings) for db in dbs)
        assert await first.acquire()
        assert await first.acquire()  # still held: the check does not take it twice
        assert not await second.acquire()
        await first.release()
        assert await second.acquire()
        await second.release()

    async def test_a_leader_whose_session_died_steps_down(
        self, pg: tuple[Settings, list[Database]]
    ) -> None:
        settings, dbs = pg
        dbs.extend([Database.from_settings(settings), Database.from_settings(settings)])
        old, new = (LeaderLock(db, settings) for db in dbs)
        assert await old.acquire()
        [pid] = await holders(settings.database_url)
        await terminate(settings.database_url, pid)
        # the lock went with the session: another process takes it
        assert await new.acquire()
        # and the old leader's next pass finds out instead of leading too
        assert not await old.acquire()
        assert len(await holders(settings.database_url)) == 1
        await new.release()
        assert await old.acquire()  # free again: the old process may lead once more
        await old.release()
        assert await holders(settings.database_url) == []

    async def test_a_dead_session_alone_is_replaced(
        self, pg: tuple[Settings, list[Database]]
    ) -> None:
        settings, dbs = pg
        dbs.append(Database.from_settings(settings))
        lock = LeaderLock(dbs[0], settings)
        assert await lock.acquire()
        [pid] = await holders(settings.database_url)
        await terminate(settings.database_url, pid)
        assert await lock.acquire()  # a new session took the free lock
        [again] = await holders(settings.database_url)
        assert again != pid
        await lock.release()


class TestSqliteLeader:
    async def test_the_lock_file_admits_one_leader(self, tmp_path: Path) -> None:
        settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 'l.db'}")
        db = Database.from_settings(settings)
        try:
            first, second = LeaderLock(db, settings), LeaderLock(db, settings)
            assert await first.acquire()
            assert await first.acquire()
            assert not await second.acquire()
            await first.release()
            assert await second.acquire()
            await second.release()
        finally:
            await db.dispose()
