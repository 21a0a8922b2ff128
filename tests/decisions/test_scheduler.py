"""The background scheduler on its own database: periodic evaluation of time rules, retention."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import func, select

from retrigger.auth.scopes import SYSTEM
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.decisions.models import Decision
from retrigger.decisions.scheduler import EvaluationScheduler
from retrigger.policies import service as policy_service
from retrigger.products.models import Product
from retrigger.signals.models import MetricPoint
from retrigger.teams.models import Team

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest_asyncio.fixture(loop_scope="session")
async def scheduler(tmp_path: Path) -> AsyncIterator[EvaluationScheduler]:
    settings = Settings(database_url=f"sqlite+aiosqlite:///{tmp_path / 's.db'}")
    db = Database.from_settings(settings)
    await migrate.upgrade(db.engine)
    async with db.session_scope() as session:
        team = Team(name="ml", description="")
        session.add(team)
        await session.flush()
        for name in ("timed", "untimed"):
            session.add(Product(name=name, team_id=team.id, description="", tags=[], features=[]))
    async with db.session_scope() as session:
        timed = {"rules": [{"id": "age", "type": "staleness", "max_age": "30d"}]}
        untimed = {
            "rules": [{"id": "a", "type": "alert", "matchers": [{"name": "x", "value": "y"}]}]
        }
        for name, spec in (("timed", timed), ("untimed", untimed)):
            await policy_service.save_policy(
                session, principal=SYSTEM, product_name=name, spec=spec, change_reason="test"
            )
    yield EvaluationScheduler(db, settings, now=lambda: NOW)
    await db.dispose()


class TestScheduler:
    async def test_tick_evaluates_only_products_with_time_rules(
        self, scheduler: EvaluationScheduler
    ) -> None:
        assert await scheduler.tick() == 1
        async with scheduler.db.session_scope() as session:
            rows = (await session.execute(select(Decision))).scalars().all()
        assert [(d.trigger, d.evaluated_at) for d in rows] == [("schedule", NOW)]
        assert rows[0].outcome == "insufficient_data"  # no reference: training time unknown

    async def test_cleanup_deletes_only_expired_signals(
        self, scheduler: EvaluationScheduler
    ) -> None:
        async with scheduler.db.session_scope() as session:
            product = (await session.execute(select(Product).limit(1))).scalar_one()
            for days in (200, 1):
                session.add(
                    MetricPoint(
                        product_id=product.id,
                        name="accuracy",
                        value=0.9,
                        event_time=NOW - timedelta(days=days),
                        received_at=NOW,
                    )
                )
        deleted = await scheduler.cleanup()
        assert deleted["metrics"] == 1
        async with scheduler.db.session_scope() as session:
            left = (await session.execute(select(func.count(MetricPoint.id)))).scalar_one()
        assert left == 1
