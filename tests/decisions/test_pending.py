"""Durable evaluations after ingestion: the mark an ingest transaction leaves on its product, the
evaluation that clears it, the scheduler's backstop, and the debounce with a maximum delay.

On SQLite and PostgreSQL, with committed data (each test makes its own products), and an
injected clock: nothing waits for time to pass except where a real timer is the point.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select, update

from retrigger.auth.scopes import SYSTEM
from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.decisions import service as decision_service
from retrigger.decisions.models import Decision, ProductState
from retrigger.decisions.scheduler import EvaluationScheduler
from retrigger.decisions.schemas import Trigger
from retrigger.policies import service as policy_service
from retrigger.products.models import Product
from retrigger.signals import service as signal_service
from retrigger.signals.alert_schemas import AlertmanagerPayload, AlertSource
from retrigger.signals.schemas import MetricBatchIn, OutcomeBatchIn, SampleBatchIn
from tests.fixtures.db import committed_team_database

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
ALERT_RULE = {"id": "am", "type": "alert", "matchers": [{"name": "alertname", "value": "Drift"}]}
MAX_FUTURE = timedelta(minutes=5)
_names = itertools.count(1)


class Clock:
    """The scheduler's ``now``, moved by the test."""

    def __init__(self, at: datetime) -> None:
        self.at = at

    def __call__(self) -> datetime:
        return self.at


@dataclass
class World:
    db: Database
    url: str
    team_id: int

    def settings(self, **overrides: Any) -> Settings:
        values: dict[str, Any] = {
            # no timer fires by itself within a test: the tests fire them (``run_timer``)
            "evaluation_debounce_seconds": 30,
            "evaluation_max_delay_seconds": 60,
            **overrides,
        }
        return Settings(database_url=self.url, **values)

    def scheduler(self, clock: Clock, **overrides: Any) -> EvaluationScheduler:
        return EvaluationScheduler(self.db, self.settings(**overrides), now=clock)

    async def product(self, *, policy: bool = True) -> tuple[int, str]:
        name = f"p{next(_names)}"
        async with self.db.session_scope() as session:
            product = Product(
                name=name,
                team_id=self.team_id,
                description="",
                tags=[],
                features=[{"name": "x", "kind": "numeric"}],
            )
            session.add(product)
            await session.flush()
            product_id = product.id
        if policy:
            async with self.db.session_scope() as session:
                await policy_service.save_policy(
                    session,
                    principal=SYSTEM,
                    product_name=name,
                    spec={"rules": [ALERT_RULE]},
                    change_reason="test",
                )
        return product_id, name

    async def mark(self, product_id: int) -> tuple[bool, datetime | None]:
        """(has a state row, its dirty_since)."""
        async with self.db.read_scope() as session:
            row = (
                await session.execute(
                    select(ProductState.dirty_since).where(ProductState.product_id == product_id)
                )
            ).first()
        return (False, None) if row is None else (True, row.dirty_since)

    async def set_mark(self, product_id: int, at: datetime | None) -> None:
        async with self.db.session_scope() as session:
            await session.execute(
                update(ProductState)
                .where(ProductState.product_id == product_id)
                .values(dirty_since=at)
            )

    async def decisions(self, product_id: int) -> list[tuple[str, datetime]]:
        async with self.db.read_scope() as session:
            rows = await session.execute(
                select(Decision.trigger, Decision.evaluated_at)
                .where(Decision.product_id == product_id)
                .order_by(Decision.id)
            )
            return [(r.trigger, r.evaluated_at) for r in rows.all()]

    async def metrics(self, name: str, at: datetime) -> None:
        batch = MetricBatchIn.model_validate({"points": [{"name": "m", "value": 1.0}]})
        async with self.db.session_scope() as session:
            ref = await signal_service.get_product_for_ingest(session, principal=SYSTEM, name=name)
            await signal_service.ingest_metrics(
                session,
                product=ref,
                batch=batch,
                key=None,
                request_hash=None,
                now=at,
                max_future=MAX_FUTURE,
            )

    async def samples(self, name: str, at: datetime) -> None:
        batch = SampleBatchIn.model_validate({"columns": {"x": [1.0, 2.0]}})
        async with self.db.session_scope() as session:
            ref = await signal_service.get_product_for_ingest(session, principal=SYSTEM, name=name)
            await signal_service.ingest_samples(
                session,
                product=ref,
                batch=batch,
                key=None,
                request_hash=None,
                now=at,
                max_future=MAX_FUTURE,
            )

    async def outcomes(self, name: str, at: datetime) -> None:
        batch = OutcomeBatchIn.model_validate(
            {
                "outcomes": [{"prediction_id": "a", "prediction": 1, "label": 1}],
                "task": "classification",
            }
        )
        async with self.db.session_scope() as session:
            ref = await signal_service.get_product_for_ingest(session, principal=SYSTEM, name=name)
            await signal_service.ingest_outcomes(
                session,
                product=ref,
                batch=batch,
                key=None,
                request_hash=None,
                now=at,
                max_future=MAX_FUTURE,
            )

    async def alerts(self, names: list[str], at: datetime) -> list[int]:
        """Deliver one firing alert per product; the ids of the products it changed."""
        payload = AlertmanagerPayload.model_validate(
            {
                "status": "firing",
                "alerts": [
                    {
                        "status": "firing",
                        "labels": {"alertname": "Drift", "product": name},
                        "startsAt": (T0 - timedelta(minutes=1)).isoformat(),
                        "fingerprint": f"fp-{name}",
                    }
                    for name in names
                ],
            }
        )
        async with self.db.session_scope() as session:
            result = await signal_service.ingest_alerts(
                session,
                principal=SYSTEM,
                payload=payload,
                source=AlertSource.alertmanager,
                product_label="product",
                now=at,
            )
        return list(result._changed_product_ids)

    async def evaluate(self, product_id: int, at: datetime, *, dry_run: bool = False) -> None:
        async with self.db.session_scope() as session:
            product = await session.get(Product, product_id)
            assert product is not None
            await decision_service.evaluate(
                session,
                product=product,
                trigger=Trigger.api,
                actor="test",
                now=at,
                dry_run=dry_run,
            )


@pytest_asyncio.fixture(scope="module", loop_scope="session", params=["sqlite", "postgresql"])
async def world(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[World]:
    async with committed_team_database(request.param, tmp_path_factory.mktemp("pending")) as made:
        db, url, team_id = made
        yield World(db=db, url=url, team_id=team_id)


class TestIngestionMarks:
    async def test_first_batch_creates_the_state_row_marked(self, world: World) -> None:
        product_id, name = await world.product()
        assert await world.mark(product_id) == (False, None)
        await world.metrics(name, T0)
        assert await world.mark(product_id) == (True, T0)

    async def test_later_batches_keep_the_first_time(self, world: World) -> None:
        product_id, name = await world.product()
        await world.metrics(name, T0)
        await world.metrics(name, T0 + timedelta(seconds=5))
        assert await world.mark(product_id) == (True, T0)

    @pytest.mark.parametrize("kind", ["metrics", "samples", "outcomes"])
    async def test_every_kind_marks_an_evaluated_product(self, world: World, kind: str) -> None:
        product_id, name = await world.product()
        await world.evaluate(product_id, T0)  # the state row exists, unmarked
        assert await world.mark(product_id) == (True, None)
        await getattr(world, kind)(name, T0 + timedelta(seconds=1))
        assert await world.mark(product_id) == (True, T0 + timedelta(seconds=1))

    async def test_alert_redelivery_marks_nothing(self, world: World) -> None:
        product_id, name = await world.product()
        assert await world.alerts([name], T0) == [product_id]
        assert await world.mark(product_id) == (True, T0)
        await world.set_mark(product_id, None)  # as if evaluated since
        assert await world.alerts([name], T0 + timedelta(seconds=1)) == []
        assert await world.mark(product_id) == (True, None)

    async def test_only_products_with_new_alerts_are_marked(self, world: World) -> None:
        old_id, old = await world.product()
        new_id, new = await world.product()
        await world.alerts([old], T0)
        await world.set_mark(old_id, None)
        changed = await world.alerts([old, new], T0 + timedelta(seconds=1))
        assert changed == [new_id]
        assert await world.mark(old_id) == (True, None)
        assert await world.mark(new_id) == (True, T0 + timedelta(seconds=1))


class TestEvaluationClearsTheMark:
    async def test_a_stored_evaluation_clears_it(self, world: World) -> None:
        product_id, name = await world.product()
        await world.metrics(name, T0)
        await world.evaluate(product_id, T0 + timedelta(seconds=1))
        assert await world.mark(product_id) == (True, None)

    async def test_a_signal_newer_than_the_evaluation_keeps_it(self, world: World) -> None:
        product_id, name = await world.product()
        await world.metrics(name, T0 + timedelta(seconds=10))
        await world.evaluate(product_id, T0 + timedelta(seconds=1))
        assert await world.mark(product_id) == (True, T0 + timedelta(seconds=10))

    async def test_a_dry_run_keeps_it(self, world: World) -> None:
        product_id, name = await world.product()
        await world.metrics(name, T0)
        await world.evaluate(product_id, T0 + timedelta(seconds=1), dry_run=True)
        assert await world.mark(product_id) == (True, T0)


class TestBackstop:
    async def test_a_restarted_process_evaluates_what_the_last_one_owed(self, world: World) -> None:
        product_id, name = await world.product()
        await world.metrics(name, T0)  # the process that ingested is gone before its timer
        clock = Clock(T0 + timedelta(seconds=30))
        scheduler = world.scheduler(clock)  # a new process: nothing in memory
        await scheduler.tick()
        assert await world.decisions(product_id) == []  # not overdue yet
        clock.at = T0 + timedelta(seconds=61)
        await scheduler.tick()
        assert await world.decisions(product_id) == [("ingest", clock.at)]
        assert await world.mark(product_id) == (True, None)
        clock.at += timedelta(minutes=5)
        await scheduler.tick()
        assert len(await world.decisions(product_id)) == 1
        await scheduler.stop()

    async def test_a_product_without_policy_is_unmarked(self, world: World) -> None:
        product_id, name = await world.product(policy=False)
        await world.metrics(name, T0)
        scheduler = world.scheduler(Clock(T0 + timedelta(minutes=2)))
        await scheduler.tick()
        assert await world.decisions(product_id) == []
        assert await world.mark(product_id) == (True, None)
        await scheduler.stop()

    async def test_the_fast_path_and_the_backstop_store_one_decision(self, world: World) -> None:
        product_id, name = await world.product()
        clock = Clock(T0)
        scheduler = world.scheduler(clock)
        await world.metrics(name, T0)
        clock.at = T0 + timedelta(seconds=1)
        scheduler.notify(product_id)  # a timer armed; the backstop gets there first
        clock.at = T0 + timedelta(minutes=2)
        await scheduler.tick()
        await run_timer(scheduler, product_id)  # then the timer fires
        assert await world.decisions(product_id) == [("ingest", T0 + timedelta(minutes=2))]

        # new signals after that evaluation: the fast path evaluates them, the backstop does not
        await world.metrics(name, T0 + timedelta(minutes=3))
        clock.at = T0 + timedelta(minutes=3, seconds=1)
        scheduler.notify(product_id)
        await run_timer(scheduler, product_id)
        clock.at = T0 + timedelta(minutes=10)
        await scheduler.tick()
        assert [t for t, _ in await world.decisions(product_id)] == ["ingest", "ingest"]
        assert await world.mark(product_id) == (True, None)
        await scheduler.stop()


async def run_timer(scheduler: EvaluationScheduler, product_id: int) -> None:
    """Fire a product's armed timer now, and wait for the evaluation it starts."""
    pending = scheduler._pending[product_id]
    pending.handle.cancel()
    scheduler._spawn(product_id)
    await asyncio.gather(*scheduler._tasks)


class TestDebounce:
    async def test_re_arming_never_passes_the_deadline(self, world: World) -> None:
        product_id, _ = await world.product()
        scheduler = world.scheduler(
            Clock(T0), evaluation_debounce_seconds=100, evaluation_max_delay_seconds=100
        )
        scheduler.notify(product_id)
        first = scheduler._pending[product_id]
        scheduler.notify(product_id)
        second = scheduler._pending[product_id]
        assert first.handle.cancelled()
        assert second.deadline == first.deadline
        assert second.handle.when() == first.deadline  # not now + debounce
        await scheduler.stop()
        assert second.handle.cancelled()

    async def test_a_burst_is_one_pending_evaluation(self, world: World) -> None:
        product_id, _ = await world.product()
        scheduler = world.scheduler(Clock(T0), evaluation_max_delay_seconds=7200)
        for _ in range(3):
            scheduler.notify(product_id)
        assert list(scheduler._pending) == [product_id]
        pending = scheduler._pending[product_id]
        assert pending.handle.when() <= pending.deadline
        await scheduler.stop()

    async def test_the_maximum_delay_is_never_below_the_debounce(self, world: World) -> None:
        scheduler = world.scheduler(
            Clock(T0), evaluation_debounce_seconds=10, evaluation_max_delay_seconds=1
        )
        assert scheduler.max_delay == 10

    async def test_steady_notifications_still_evaluate(self, world: World) -> None:
        product_id, name = await world.product()
        clock = Clock(datetime.now(UTC))
        scheduler = world.scheduler(
            clock, evaluation_debounce_seconds=0.3, evaluation_max_delay_seconds=1
        )
        deadline = time.monotonic() + 60
        try:
            while not await world.decisions(product_id):
                assert time.monotonic() < deadline, "no evaluation while batches kept coming"
                clock.at = datetime.now(UTC)
                await world.metrics(name, clock.at)
                scheduler.notify(product_id)
                await asyncio.sleep(0.05)  # the traffic's pace, shorter than the debounce
        finally:
            await scheduler.stop()
        assert {t for t, _ in await world.decisions(product_id)} == {"ingest"}
