"""The database itself keeps one active run per product (a partial unique index), on SQLite and
PostgreSQL: rows inserted directly, past every code-level check, still cannot break the rule."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.decisions.models import Decision
from retrigger.dispatch.lifecycle import ACTIVE, RunStatus
from retrigger.dispatch.models import Connection, Run
from tests.dispatch.conftest import live_settings
from tests.fixtures.db import FreshDatabase
from tests.fixtures.factories import create_product, create_team

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = datetime(2026, 11, 29, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    """A fresh database of each kind, schema from the migrations."""
    async with FreshDatabase(str(request.param), tmp_path) as url:
        database = Database.from_settings(live_settings(url))
        try:
            await migrate.upgrade(database.engine)
            yield database
        finally:
            await database.dispose()


async def setup(session: AsyncSession) -> tuple[int, int]:
    """A product and a connection; their ids."""
    product = await create_product(session, team=await create_team(session))
    connection = Connection(
        name="airflow",
        kind="airflow",
        base_url="http://airflow.test",
        auth_type="none",
        timeout_seconds=10.0,
    )
    session.add(connection)
    await session.flush()
    return product.id, connection.id


async def insert_run(
    session: AsyncSession, product_id: int, connection_id: int, state: str
) -> None:
    """A decision and its run, written with plain INSERT statements (no service code)."""
    decision_id = (
        await session.execute(
            insert(Decision)
            .values(
                product_id=product_id,
                evaluated_at=NOW,
                trigger="manual",
                outcome="fired",
                reason="inserted by the test",
                requires_approval=False,
                policy_fingerprint="0" * 64,
                fired_rules=[],
                fired_types=",manual,",
                findings=[],
                guards=[],
                inputs={},
                created_by="test",
                created_at=NOW,
            )
            .returning(Decision.id)
        )
    ).scalar_one()
    await session.execute(
        insert(Run).values(
            product_id=product_id,
            decision_id=decision_id,
            state=state,
            connection_id=connection_id,
            kind="airflow",
            pipeline="train",
            idempotency_key=f"test-run-{decision_id}",
            parameters={},
            context={},
            external_data={},
            attempts=0,
            cancel_pending=False,
            outputs={},
            created_by="test",
            created_at=NOW,
            updated_at=NOW,
        )
    )


class TestOneActiveRunPerProduct:
    @pytest.mark.parametrize("second", sorted(ACTIVE))
    async def test_a_second_active_run_is_refused(self, db: Database, second: RunStatus) -> None:
        async with db.session_scope() as session:
            product_id, connection_id = await setup(session)
            await insert_run(session, product_id, connection_id, RunStatus.RUNNING.value)
        with pytest.raises(IntegrityError, match="(?i)unique"):
            async with db.session_scope() as session:
                await insert_run(session, product_id, connection_id, second.value)

    async def test_terminal_runs_sit_beside_the_active_one(self, db: Database) -> None:
        async with db.session_scope() as session:
            product_id, connection_id = await setup(session)
            for state in RunStatus:
                if state.terminal:
                    await insert_run(session, product_id, connection_id, state.value)
            await insert_run(session, product_id, connection_id, RunStatus.PENDING.value)
            other = await create_product(session, team=await create_team(session))
            await insert_run(session, other.id, connection_id, RunStatus.PENDING.value)
        async with db.session_scope() as session:
            query = select(Run.state).where(Run.product_id == product_id)
            states = sorted((await session.execute(query)).scalars().all())
        assert states == sorted(s.value for s in RunStatus if s.terminal or s == "pending")
