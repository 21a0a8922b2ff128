"""Engines and sessions: one ``Database`` per process, one session per request or job."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from retrigger.config import Settings

SQLITE_BEGIN = "retrigger_sqlite_begin"
"""Execution option choosing how SQLite transactions begin: IMMEDIATE (default) or DEFERRED."""


def _configure_sqlite(engine: AsyncEngine, busy_timeout_ms: int) -> None:
    """Pragmas every SQLite connection needs, and real transactions.

    pysqlite's legacy transaction handling neither begins a transaction before a SELECT nor
    supports SAVEPOINT properly; the SQLite dialect docs' recipe hands BEGIN to SQLAlchemy.
    Transactions are serialized (one writer at a time is all SQLite has anyway).
    """

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Any) -> None:
        # IMMEDIATE: a unit of work takes the write lock up front. A deferred transaction that
        # reads, then writes while another connection (the embedded worker) has written fails
        # at once with "database is locked" (its snapshot is stale) instead of waiting the busy
        # timeout. Read-only work (GET requests, readiness) asks for DEFERRED: WAL readers then
        # never wait for a writer.
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "IMMEDIATE")
        conn.exec_driver_sql("BEGIN DEFERRED" if mode == "DEFERRED" else "BEGIN IMMEDIATE")


def create_engine(settings: Settings) -> AsyncEngine:
    """An async engine for the configured URL, with SQLite pragmas or PostgreSQL pool sizing."""
    url = make_url(settings.database_url)
    kwargs: dict[str, Any] = {"echo": settings.database_echo}
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database and database != ":memory:" and not database.startswith("file:"):
            Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, **kwargs)
        _configure_sqlite(engine, settings.sqlite_busy_timeout_ms)
        return engine
    kwargs.update(
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout,
        pool_pre_ping=settings.database_pool_pre_ping,
    )
    return create_async_engine(url, **kwargs)


class Database:
    """The engine and session factory of one process."""

    def __init__(self, engine: AsyncEngine, settings: Settings | None = None) -> None:
        self.engine = engine
        # services reach the process settings through ``session.info`` (see ``settings_of``)
        info = {"settings": settings} if settings is not None else {}
        self.sessionmaker = async_sessionmaker(
            engine, expire_on_commit=False, autoflush=False, info=info
        )
        # same pool; on SQLite its transactions begin DEFERRED (they must not write)
        self.read_engine = engine.execution_options(**{SQLITE_BEGIN: "DEFERRED"})
        self.read_sessionmaker = async_sessionmaker(
            self.read_engine, expire_on_commit=False, autoflush=False, info=info
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Database:
        return cls(create_engine(settings), settings)

    @asynccontextmanager
    async def session_scope(self) -> AsyncIterator[AsyncSession]:
        """One unit of work: commit on success, roll back on error."""
        async with self.sessionmaker() as session:
            try:
                yield session
                await session.commit()
            except BaseException:
                await session.rollback()
                raise

    @asynccontextmanager
    async def read_scope(self) -> AsyncIterator[AsyncSession]:
        """A read-only unit of work (never blocks on, nor blocks, a SQLite writer); rolled back."""
        async with self.read_sessionmaker() as session:
            try:
                yield session
            finally:
                await session.rollback()

    @asynccontextmanager
    async def read_scope_after(self, session: AsyncSession) -> AsyncIterator[AsyncSession]:
        """Long read-only work inside a request whose unit of work is ``session``.

        That transaction is committed first (the API key lookup may have begun it, and on SQLite
        it holds the write lock until it ends), then the work runs in a ``read_scope``, so a
        backtest or a dry run never blocks ingestion. A session bound to an outer connection (a
        test's enclosing transaction) is not this engine's: the work stays in it, where the data
        it must see lives.
        """
        if session.bind is not self.engine:
            yield session
            return
        await session.commit()
        async with self.read_scope() as read:
            yield read

    async def dispose(self) -> None:
        await self.engine.dispose()


def settings_of(session: AsyncSession) -> Settings:
    """The settings of the ``Database`` that made ``session`` (the process settings otherwise)."""
    settings = session.info.get("settings")
    if isinstance(settings, Settings):
        return settings
    from retrigger.config import get_settings

    return get_settings()
