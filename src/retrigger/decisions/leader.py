"""One leader among processes for periodic work: a PostgreSQL advisory lock held on its own
connection, or an exclusive lock file beside the SQLite database.

The advisory lock lives as long as the server session holding it: when that connection dies (a
database restart, a failover, an idle timeout) the lock is gone and another process may take it.
So a leader re-checks, on every pass, that its session still holds the lock, and steps down on
any doubt. The lock needs a real session: behind PgBouncer in transaction mode it holds nothing.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import make_url

from retrigger.config import Settings
from retrigger.db.session import Database

log = logging.getLogger("retrigger.scheduler")

# an arbitrary constant naming "retrigger scheduler" among advisory locks
ADVISORY_KEY = 0x72657472
# does this session hold it? (a bigint key shows as classid = high half, objid = low half)
_HELD = (
    "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted "
    f"AND pid = pg_backend_pid() AND classid = {ADVISORY_KEY >> 32} "
    f"AND objid = {ADVISORY_KEY & 0xFFFFFFFF} AND objsubid = 1"
)


class LeaderLock:
    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self._conn: Any = None
        self._fd: int | None = None

    async def acquire(self) -> bool:
        """True if this process is (or just became) the leader."""
        if self.settings.is_sqlite:
            return self._acquire_file()
        if self._conn is not None:
            if await self._still_held():
                return True
            log.warning(
                "this process lost the scheduler lock (its connection failed); stepping down"
            )
            await self._drop()
        conn = await self.db.engine.connect()
        got = (await conn.execute(text(f"SELECT pg_try_advisory_lock({ADVISORY_KEY})"))).scalar()
        await conn.commit()
        if got:
            self._conn = conn
            log.info("this process leads the periodic scheduler")
            return True
        await conn.close()
        return False

    async def _still_held(self) -> bool:
        """One query on the lock's own connection; any error counts as "no"."""
        try:
            held = (await self._conn.execute(text(_HELD))).scalar()
            await self._conn.commit()
        except Exception:
            log.debug("scheduler lock check failed", exc_info=True)
            return False
        return bool(held)

    async def _drop(self) -> None:
        """Forget the lock's connection without returning it to the pool: closing the server
        session releases whatever it may still hold, so no pooled connection keeps the lock."""
        conn, self._conn = self._conn, None
        with contextlib.suppress(Exception):
            await conn.invalidate()
        with contextlib.suppress(Exception):
            await conn.close()

    def _acquire_file(self) -> bool:
        if self._fd is not None:
            return True
        database = make_url(self.settings.database_url).database or "retrigger"
        path = f"{database}.scheduler.lock" if database != ":memory:" else "/tmp/retrigger.lock"
        fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        return True

    async def release(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await self._conn.execute(text(f"SELECT pg_advisory_unlock({ADVISORY_KEY})"))
                await self._conn.commit()
            with contextlib.suppress(Exception):
                await self._conn.close()
            self._conn = None
        if self._fd is not None:
            with contextlib.suppress(OSError):
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
            self._fd = None
