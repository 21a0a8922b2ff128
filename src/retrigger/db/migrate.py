"""Programmatic Alembic: upgrade, downgrade, and "is the schema at head?" for a given engine."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

# an arbitrary constant naming "retrigger migrations" among PostgreSQL advisory locks
MIGRATION_LOCK = 0x72746D67


def migrations_dir() -> Path:
    """``migrations/`` of a source checkout, or the copy packaged inside the wheel."""
    here = Path(__file__).resolve()
    packaged = here.parent.parent / "_migrations"
    if packaged.is_dir():
        return packaged
    return here.parents[3] / "migrations"


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    return cfg


def head_revision() -> str | None:
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def current_revision(engine: AsyncEngine) -> str | None:
    async with engine.connect() as conn:
        return await conn.run_sync(_current)


async def is_at_head(engine: AsyncEngine) -> bool:
    return await current_revision(engine) == head_revision()


async def _run(engine: AsyncEngine, fn: str, revision: str) -> None:
    cfg = alembic_config()

    def _do(connection: Connection) -> None:
        cfg.attributes["connection"] = connection
        getattr(command, fn)(cfg, revision)

    async with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # replicas starting together queue here; the later ones then find the schema at head
            await conn.execute(text(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})"))
        await conn.run_sync(_do)


async def upgrade(engine: AsyncEngine, revision: str = "head") -> None:
    """Apply migrations up to ``revision`` in one transaction."""
    await _run(engine, "upgrade", revision)


async def downgrade(engine: AsyncEngine, revision: str = "base") -> None:
    await _run(engine, "downgrade", revision)
