"""Migrations run up, down and up again on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from retrigger.config import Settings
from retrigger.db import all_models, migrate
from retrigger.db.session import create_engine
from tests.fixtures.db import FreshDatabase

pytestmark = pytest.mark.asyncio(loop_scope="session")

EXPECTED_TABLES = {
    "teams",
    "api_keys",
    "products",
    "audit_events",
    "policy_templates",
    "policy_template_versions",
    "policy_versions",
    "metric_points",
    "sample_batches",
    "sample_columns",
    "outcomes",
    "alerts",
    "signal_idempotency_keys",
    "decisions",
    "product_states",
    "product_references",
    "reference_features",
}


def _tables(conn: Connection) -> set[str]:
    return set(inspect(conn).get_table_names()) - {"alembic_version"}


def _model_diff(conn: Connection) -> list[object]:
    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return list(compare_metadata(context, all_models.Base.metadata))


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
class TestMigrations:
    async def test_up_down_up(self, kind: str, tmp_path: Path) -> None:
        async with FreshDatabase(kind, tmp_path) as url:
            engine = create_engine(Settings(database_url=url))
            try:
                await migrate.upgrade(engine)
                async with engine.connect() as conn:
                    assert EXPECTED_TABLES <= await conn.run_sync(_tables)
                assert await migrate.is_at_head(engine)
                await migrate.downgrade(engine, "base")
                async with engine.connect() as conn:
                    assert await conn.run_sync(_tables) == set()
                assert await migrate.current_revision(engine) is None
                await migrate.upgrade(engine)
                assert await migrate.is_at_head(engine)
            finally:
                await engine.dispose()

    async def test_models_match_migrations(self, kind: str, tmp_path: Path) -> None:
        async with FreshDatabase(kind, tmp_path) as url:
            engine = create_engine(Settings(database_url=url))
            try:
                await migrate.upgrade(engine)
                async with engine.connect() as conn:
                    diff = await conn.run_sync(_model_diff)
                assert diff == []
            finally:
                await engine.dispose()
