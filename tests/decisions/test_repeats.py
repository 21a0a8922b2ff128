"""Repeat folding: a scheduled evaluation that comes to the product's last decision again and reads
nothing new bumps that decision's ``repeat_count`` instead of storing one more.

On SQLite and PostgreSQL, with committed data (each test makes its own products) and an
injected clock; the last class goes through the HTTP API on the shared test database.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import SYSTEM
from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.decisions import backtest
from retrigger.decisions import service as decision_service
from retrigger.decisions.models import Decision, ProductState
from retrigger.decisions.scheduler import EvaluationScheduler
from retrigger.decisions.schemas import Trigger
from retrigger.policies import service as policy_service
from retrigger.products.models import Product
from retrigger.signals import service as signal_service
from retrigger.signals.schemas import OutcomeBatchIn
from tests.fixtures.db import committed_team_database

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
STALENESS = {"id": "age", "type": "staleness", "max_age": "30d"}
_names = itertools.count(1)


class Clock:
    """The scheduler's ``now``, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass(frozen=True)
class Row:
    id: int
    trigger: str
    outcome: str
    evaluated_at: datetime
    repeat_count: int
    last_repeated_at: datetime | None
    suppressed_by: str | None


@dataclass(frozen=True)
class State:
    last_evaluated_at: datetime | None
    history: dict[str, Any]
    schedules: dict[str, Any]
    detectors: dict[str, Any]
    fired_at: list[str]


@dataclass
class World:
    db: Database
    url: str
    team_id: int

    def scheduler(self, clock: Clock) -> EvaluationScheduler:
        settings = Settings(database_url=self.url, evaluation_max_delay_seconds=60)
        return EvaluationScheduler(self.db, settings, now=clock)

    async def product(self, rules: list[dict[str, Any]], *, trained_at: datetime) -> int:
        name = f"r{next(_names)}"
        async with self.db.session_scope() as session:
            product = Product(name=name, team_id=self.team_id, description="", tags=[], features=[])
            session.add(product)
            await session.flush()
            product_id = product.id
        async with self.db.session_scope() as session:
            await policy_service.save_policy(
                session,
                principal=SYSTEM,
                product_name=name,
                spec={"rules": rules},
                change_reason="test",
            )
            await decision_service.note_model_trained(
                session, product_id=product_id, trained_at=trained_at
            )
        return product_id

    async def name(self, product_id: int) -> str:
        async with self.db.read_scope() as session:
            product = await session.get(Product, product_id)
            assert product is not None
            return product.name

    async def decisions(self, product_id: int) -> list[Row]:
        async with self.db.read_scope() as session:
            rows = await session.execute(
                select(Decision).where(Decision.product_id == product_id).order_by(Decision.id)
            )
            return [
                Row(
                    d.id,
                    d.trigger,
                    d.outcome,
                    d.evaluated_at,
                    d.repeat_count,
                    d.last_repeated_at,
                    d.suppressed_by,
                )
                for d in rows.scalars().all()
            ]

    async def state(self, product_id: int) -> State:
        async with self.db.read_scope() as session:
            row = await session.get(ProductState, product_id)
            assert row is not None
            return State(
                row.last_evaluated_at,
                dict(row.history),
                dict(row.schedules),
                dict(row.detectors),
                list(row.fired_at),
            )

    async def evaluate(
        self,
        product_id: int,
        at: datetime,
        trigger: Trigger = Trigger.api,
        *,
        dry_run: bool = False,
    ) -> decision_service.DecisionRead:
        async with self.db.session_scope() as session:
            product = await session.get(Product, product_id)
            assert product is not None
            return await decision_service.evaluate(
                session, product=product, trigger=trigger, actor="test", now=at, dry_run=dry_run
            )

    async def outcomes(self, product_id: int, *, at: datetime, right: int, wrong: int) -> None:
        """Store ``right`` correct and ``wrong`` wrong classifications at ``at``."""
        start = next(_names) * 1000
        rows = [
            {"prediction_id": f"o{start + i}", "prediction": 1, "label": 1 if i < right else 0}
            for i in range(right + wrong)
        ]
        batch = OutcomeBatchIn.model_validate({"outcomes": rows, "task": "classification"})
        name = await self.name(product_id)
        async with self.db.session_scope() as session:
            ref = await signal_service.get_product_for_ingest(session, principal=SYSTEM, name=name)
            await signal_service.ingest_outcomes(
                session,
                product=ref,
                batch=batch,
                key=None,
                request_hash=None,
                now=at,
                max_future=timedelta(minutes=5),
            )


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    async with committed_team_database(request.param, tmp_path_factory.mktemp("repeats")) as made:
        db, url, team_id = made
        yield World(db=db, url=url, team_id=team_id)


class TestScheduledRepeats:
    async def test_fresh_then_stale_then_cooldown(self, world: World) -> None:
        # stale 5 minutes after T0 (max_age 30d)
        product_id = await world.product(
            [STALENESS], trained_at=T0 - timedelta(days=30) + 5 * MINUTE
        )
        clock = Clock(T0)
        scheduler = world.scheduler(clock)
        for minute in range(5):
            clock.at = T0 + minute * MINUTE
            assert await scheduler.tick() >= 1
        rows = await world.decisions(product_id)
        assert [(r.trigger, r.outcome, r.evaluated_at) for r in rows] == [
            ("schedule", "not_fired", T0)
        ]
        assert (rows[0].repeat_count, rows[0].last_repeated_at) == (4, T0 + 4 * MINUTE)
        assert (await world.state(product_id)).last_evaluated_at == T0 + 4 * MINUTE

        clock.at = T0 + 10 * MINUTE  # the model is now stale: a fire is always stored
        await scheduler.tick()
        for minute in range(11, 15):  # then the cooldown suppresses the same fire every tick
            clock.at = T0 + minute * MINUTE
            await scheduler.tick()
        rows = await world.decisions(product_id)
        assert [(r.outcome, r.suppressed_by, r.evaluated_at, r.repeat_count) for r in rows] == [
            ("not_fired", None, T0, 4),
            ("fired", None, T0 + 10 * MINUTE, 0),
            ("suppressed", "cooldown", T0 + 11 * MINUTE, 3),
        ]
        assert rows[2].last_repeated_at == T0 + 14 * MINUTE
        state = await world.state(product_id)
        assert state.last_evaluated_at == T0 + 14 * MINUTE
        assert len(state.fired_at) == 1

    async def test_other_triggers_are_stored_and_break_the_fold(self, world: World) -> None:
        product_id = await world.product([STALENESS], trained_at=T0 - timedelta(days=1))
        for minute in range(3):
            await world.evaluate(product_id, T0 + minute * MINUTE, Trigger.schedule)
        read = await world.evaluate(product_id, T0 + 3 * MINUTE, Trigger.api)
        assert (read.trigger, read.repeat_count) == ("api", 0)
        ingest = await world.evaluate(product_id, T0 + 4 * MINUTE, Trigger.ingest)
        assert ingest.id != read.id  # the same verdict again, but not a scheduled one
        folded = await world.evaluate(product_id, T0 + 5 * MINUTE, Trigger.schedule)
        await world.evaluate(product_id, T0 + 6 * MINUTE, Trigger.schedule)
        rows = await world.decisions(product_id)
        assert [(r.trigger, r.evaluated_at, r.repeat_count) for r in rows] == [
            ("schedule", T0, 2),
            ("api", T0 + 3 * MINUTE, 0),
            ("ingest", T0 + 4 * MINUTE, 2),  # the next scheduled evaluations compare with it
        ]
        assert rows[0].last_repeated_at == T0 + 2 * MINUTE
        assert folded.id == ingest.id
        assert (folded.repeat_count, folded.last_repeated_at) == (1, T0 + 5 * MINUTE)

    async def test_dry_runs_neither_fold_nor_break_the_fold(self, world: World) -> None:
        product_id = await world.product([STALENESS], trained_at=T0 - timedelta(days=1))
        await world.evaluate(product_id, T0, Trigger.schedule)
        dry = await world.evaluate(product_id, T0 + MINUTE, Trigger.schedule, dry_run=True)
        assert (dry.id, dry.dry_run, dry.repeat_count, dry.last_repeated_at) == (
            None,
            True,
            0,
            None,
        )
        await world.evaluate(product_id, T0 + 2 * MINUTE, Trigger.schedule)
        rows = await world.decisions(product_id)
        assert [(r.evaluated_at, r.repeat_count, r.last_repeated_at) for r in rows] == [
            (T0, 1, T0 + 2 * MINUTE)
        ]

    async def test_a_policy_change_is_stored(self, world: World) -> None:
        product_id = await world.product([STALENESS], trained_at=T0 - timedelta(days=1))
        await world.evaluate(product_id, T0, Trigger.schedule)
        async with world.db.session_scope() as session:
            await policy_service.save_policy(
                session,
                principal=SYSTEM,
                product_name=await world.name(product_id),
                spec={"rules": [{**STALENESS, "max_age": "60d"}]},
                change_reason="longer",
            )
        await world.evaluate(product_id, T0 + MINUTE, Trigger.schedule)
        await world.evaluate(product_id, T0 + 2 * MINUTE, Trigger.schedule)
        rows = await world.decisions(product_id)
        assert [(r.evaluated_at, r.repeat_count) for r in rows] == [
            (T0, 0),
            (T0 + MINUTE, 1),
        ]


class TestWhatIsNew:
    async def test_m_of_n_history_does_not_advance_on_folded_ticks(self, world: World) -> None:
        performance = {
            "id": "acc",
            "type": "performance",
            "metric": "accuracy",
            "threshold": 0.9,
            "min_samples": 4,
            "window": "7d",
            "m": 3,
            "n": 5,
        }
        product_id = await world.product(
            [STALENESS, performance], trained_at=T0 - timedelta(days=1)
        )
        await world.outcomes(product_id, at=T0 - MINUTE, right=3, wrong=3)  # accuracy 0.5
        for minute in range(5):  # without folding, the third tick would fire on the same data
            await world.evaluate(product_id, T0 + minute * MINUTE, Trigger.schedule)
        rows = await world.decisions(product_id)
        assert [(r.outcome, r.repeat_count) for r in rows] == [("not_fired", 4)]
        assert (await world.state(product_id)).history == {"acc": [True]}

        # new outcomes in the window: new data, so the evaluation is stored and the history grows
        await world.outcomes(product_id, at=T0 + 5 * MINUTE, right=1, wrong=3)
        await world.evaluate(product_id, T0 + 6 * MINUTE, Trigger.schedule)
        await world.evaluate(product_id, T0 + 7 * MINUTE, Trigger.schedule)
        rows = await world.decisions(product_id)
        assert [(r.outcome, r.evaluated_at, r.repeat_count) for r in rows] == [
            ("not_fired", T0, 4),
            ("not_fired", T0 + 6 * MINUTE, 1),
        ]
        assert (await world.state(product_id)).history == {"acc": [True, True]}

        # any evaluation of a window already decided re-decides its entry: counted once
        read = await world.evaluate(product_id, T0 + 8 * MINUTE, Trigger.api)
        assert (read.trigger, read.outcome.value) == ("api", "not_fired")
        assert (await world.state(product_id)).history == {"acc": [True, True]}

    async def test_a_schedule_rule_that_fires_or_starts_is_stored(self, world: World) -> None:
        hourly = {"id": "hourly", "type": "schedule", "cron": "0 * * * *"}
        product_id = await world.product([hourly], trained_at=T0 - timedelta(days=1))
        for minute in (1, 2, 3, 61, 62, 63):
            await world.evaluate(product_id, T0 + minute * MINUTE, Trigger.schedule)
        rows = await world.decisions(product_id)
        assert [(r.outcome, r.evaluated_at, r.repeat_count) for r in rows] == [
            ("not_fired", T0 + MINUTE, 2),  # the schedule starts: stored; then repeats
            ("fired", T0 + 61 * MINUTE, 0),  # 13:00 fell after the repeat at 12:03
            ("not_fired", T0 + 62 * MINUTE, 1),
        ]
        state = await world.state(product_id)
        # each repeat still marks the rule evaluated, so a fire time is seen once
        assert state.schedules == {"hourly": (T0 + 63 * MINUTE).isoformat()}

    async def test_outcomes_fed_to_a_detector_are_stored(self, world: World) -> None:
        drift = {"id": "cd", "type": "concept_drift", "detector": "adwin"}
        product_id = await world.product([STALENESS, drift], trained_at=T0 - timedelta(days=1))
        await world.outcomes(product_id, at=T0 - MINUTE, right=5, wrong=0)
        await world.evaluate(product_id, T0, Trigger.schedule)
        await world.evaluate(product_id, T0 + MINUTE, Trigger.schedule)
        state_before = (await world.state(product_id)).detectors
        await world.outcomes(product_id, at=T0 + 2 * MINUTE, right=5, wrong=0)
        await world.evaluate(product_id, T0 + 3 * MINUTE, Trigger.schedule)
        await world.evaluate(product_id, T0 + 4 * MINUTE, Trigger.schedule)
        rows = await world.decisions(product_id)
        assert [(r.evaluated_at, r.repeat_count) for r in rows] == [
            (T0, 1),
            (T0 + 3 * MINUTE, 1),
        ]
        assert (await world.state(product_id)).detectors != state_before

    async def test_backtests_report_every_step(self, world: World) -> None:
        product_id = await world.product([STALENESS], trained_at=T0 - timedelta(days=1))
        for minute in range(3):
            await world.evaluate(product_id, T0 + minute * MINUTE, Trigger.schedule)
        request = backtest.BacktestRequest(start=T0, end=T0 + timedelta(hours=5), cadence="1h")
        async with world.db.read_scope() as session:
            result = await backtest.run(
                session,
                principal=SYSTEM,
                product_name=await world.name(product_id),
                request=request,
            )
        # identical consecutive steps are all reported, none folded
        assert [s.at for s in result.steps] == [T0 + timedelta(hours=h) for h in range(6)]
        assert len({s.outcome for s in result.steps}) == 1
        assert sum(result.outcomes.values()) == 6
        rows = await world.decisions(product_id)
        assert [(r.evaluated_at, r.repeat_count) for r in rows] == [(T0, 2)]


async def _product_id(session: AsyncSession, name: str) -> int:
    product = (await session.execute(select(Product).where(Product.name == name))).scalar_one()
    return product.id


class TestApi:
    async def test_decisions_show_their_repeats(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        r = await admin.post("/v1/teams", json={"name": "ml"})
        assert r.status_code in (201, 409)
        r = await admin.post("/v1/products", json={"name": "rep", "team": "ml", "features": []})
        assert r.status_code == 201, r.text
        body = {"spec": {"rules": [STALENESS]}, "change_reason": "test"}
        r = await admin.put("/v1/products/rep/policy", json=body)
        assert r.status_code == 200, r.text
        product_id = await _product_id(session, "rep")
        await decision_service.note_model_trained(
            session, product_id=product_id, trained_at=T0 - timedelta(days=1)
        )
        product = await session.get(Product, product_id)
        assert product is not None
        for minute in range(4):
            await decision_service.evaluate(
                session,
                product=product,
                trigger=Trigger.schedule,
                actor="system",
                now=T0 + minute * MINUTE,
            )

        r = await admin.get("/v1/decisions", params={"product": "rep"})
        assert r.status_code == 200, r.text
        items = r.json()["items"]
        assert [(d["trigger"], d["repeat_count"]) for d in items] == [("schedule", 3)]
        assert datetime.fromisoformat(items[0]["last_repeated_at"]) == T0 + 3 * MINUTE
        r = await admin.get(f"/v1/decisions/{items[0]['id']}")
        assert r.status_code == 200, r.text
        decision = r.json()
        assert decision["repeat_count"] == 3
        assert datetime.fromisoformat(decision["evaluated_at"]) == T0

        r = await admin.post("/v1/products/rep:evaluate", json={"dry_run": False})
        assert r.status_code == 200, r.text
        assert (r.json()["repeat_count"], r.json()["last_repeated_at"]) == (0, None)
