"""Database-backed gauges: every process shows what is stored, whoever stored it.

Each test runs on a committed database (SQLite and PostgreSQL), with the API in this process and
"another process" played by writing rows directly, as a second replica or the worker would.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from prometheus_client import REGISTRY
from sqlalchemy import select, update

from retrigger import metrics
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.decisions import service as decision_service
from retrigger.decisions.models import Decision
from retrigger.dispatch.models import Run
from retrigger.main import create_app
from retrigger.products.models import Product
from retrigger.state_gauges import StateGauges
from tests.dispatch.conftest import RunsApi, admin_token
from tests.fixtures.db import FreshDatabase
from tests.fixtures.factories import unique

pytestmark = pytest.mark.asyncio(loop_scope="session")

FAKE = {
    "kind": "fake",
    "base_url": "http://fake.invalid",
    "auth": {"type": "none"},
    "options": {"duration_seconds": 3600},
}


def value(name: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(name, labels)


def count(name: str, **labels: str) -> float:
    return value(name, **labels) or 0.0


@dataclass
class World:
    db: Database
    api: RunsApi

    def gauges(self, now: datetime | None = None) -> StateGauges:
        if now is None:
            return StateGauges(self.db, interval=60)
        return StateGauges(self.db, interval=60, now=lambda: now)

    async def product_id(self, name: str) -> int:
        async with self.db.read_scope() as session:
            found = await session.scalar(select(Product.id).where(Product.name == name))
        assert found is not None
        return int(found)


@pytest_asyncio.fixture(loop_scope="session", params=["sqlite", "postgresql"])
async def world(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[World]:
    async with FreshDatabase(str(request.param), tmp_path) as url:
        settings = Settings(
            database_url=url, auth="enabled", background_evaluation=False, embedded_worker=False
        )
        db = Database.from_settings(settings)
        await migrate.upgrade(db.engine)
        token = await admin_token(db)
        app = create_app(settings)  # no lifespan here: the tests refresh by hand
        transport = httpx.ASGITransport(app=app)
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                http.headers["Authorization"] = f"Bearer {token}"
                yield World(db, RunsApi(http))
        finally:
            await app.state.db.dispose()
            await db.dispose()


async def product_with_fake_target(world: World, **guards: Any) -> str:
    connection = unique("fake")
    await world.api.connection(connection, **FAKE)
    name = unique("gauged")
    target = {"connection": connection, "pipeline": "train"}
    await world.api.product(name, team=unique("team"), target=target, **guards)
    return name


class TestLastEvaluation:
    async def test_gauges_follow_a_decision_stored_by_another_process(self, world: World) -> None:
        product = await product_with_fake_target(world, max_runs=3, period="7d")
        decision = await world.api.evaluate(product)
        assert decision["outcome"] == "fired", decision["reason"]
        assert value("retrigger_budget_remaining", product=product) == 2
        # another replica evaluates later and stores what it found
        product_id = await world.product_id(product)
        finding = {
            "rule_id": "drift",
            "type": "data_drift",
            "details": {
                "features": {
                    "amount": {"test": "ks", "result": {"statistic": 0.4, "p_value": 1e-6}}
                }
            },
        }
        async with world.db.session_scope() as session:
            session.add(
                Decision(
                    product_id=product_id,
                    evaluated_at=datetime.now(UTC) + timedelta(seconds=1),
                    trigger="schedule",
                    outcome="suppressed",
                    reason="elsewhere",
                    suppressed_by="active_run",
                    policy_fingerprint="x",
                    fired_rules=[],
                    fired_types="",
                    findings=[finding],
                    guards=[],
                    inputs={"budget_remaining": 1},
                    created_by="replica-b",
                )
            )
        await world.gauges().refresh()
        labels = {"product": product, "feature": "amount", "test": "ks"}
        assert value("retrigger_feature_drift_statistic", **labels) == 0.4
        assert value("retrigger_feature_drift_p_value", **labels) == 1e-6
        assert value("retrigger_budget_remaining", product=product) == 1
        # a product deleted by another replica loses its series here at the next refresh
        metrics.show_budget(product, None, 1)
        async with world.db.session_scope() as session:
            await session.execute(
                update(Product).where(Product.id == product_id).values(name=unique("renamed"))
            )
        await world.gauges().refresh()
        assert value("retrigger_budget_remaining", product=product) is None
        assert value("retrigger_feature_drift_statistic", **labels) is None

    async def test_manual_retrains_are_counted_and_spend_the_budget(self, world: World) -> None:
        product = await product_with_fake_target(world, max_runs=2, period="7d")
        fired = count("retrigger_evaluations_total", product=product, outcome="fired")
        manual = count("retrigger_evaluation_duration_seconds_count", trigger="manual")
        held = {"product": product, "guard": "active_run"}
        blocked = count("retrigger_guard_suppressions_total", **held)
        r = await world.api.retrain(product)
        assert r.status_code == 201, r.text
        assert count("retrigger_evaluations_total", product=product, outcome="fired") == fired + 1
        assert count("retrigger_evaluation_duration_seconds_count", trigger="manual") == manual + 1
        assert value("retrigger_budget_remaining", product=product) == 1
        r = await world.api.retrain(product)
        assert r.json()["suppressed_by"] == "active_run", r.text
        assert count("retrigger_guard_suppressions_total", **held) == blocked + 1
        assert value("retrigger_budget_remaining", product=product) == 1
        # the refresh reads the same budget back from the stored manual decision
        metrics.show_budget(product, None, 99)
        metrics.forget_product(product)
        await world.gauges().refresh()
        assert value("retrigger_budget_remaining", product=product) == 1


class TestRunsAndAge:
    async def test_a_process_without_a_worker_reports_a_waiting_run(self, world: World) -> None:
        product = await product_with_fake_target(world)
        r = await world.api.retrain(product)
        run_id = int(r.json()["run_id"])
        hour_ago = datetime.now(UTC) - timedelta(hours=1)
        async with world.db.session_scope() as session:
            await session.execute(update(Run).where(Run.id == run_id).values(created_at=hour_ago))
        await world.gauges().refresh()
        assert value("retrigger_runs", state="pending") == 1
        oldest = value("retrigger_run_oldest_active_seconds")
        assert oldest is not None
        assert 3600 <= oldest < 3600 + 600

    async def test_model_age_comes_from_the_stored_training_time(self, world: World) -> None:
        product = await product_with_fake_target(world)
        now = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
        async with world.db.session_scope() as session:
            await decision_service.note_model_trained(
                session,
                product_id=await world.product_id(product),
                trained_at=now - timedelta(days=2),
            )
        await world.gauges(now).refresh()
        assert value("retrigger_model_age_seconds", product=product) == 2 * 86_400
