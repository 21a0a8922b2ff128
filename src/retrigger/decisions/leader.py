"""One leader among processes for periodic work: a PostgreSQL advisory lock held on its own
connection, or an exclusive lock file beside the SQLite database."""

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
            return True
        conn = await self.db.engine.connect()
        got = (await conn.execute(text(f"SELECT pg_try_advisory_lock({ADVISORY_KEY})"))).scalar()
        await conn.commit()
        if got:
            self._conn = conn
            log.info("this process leads the periodic scheduler")
            return True
        await conn.close()
        return False

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
