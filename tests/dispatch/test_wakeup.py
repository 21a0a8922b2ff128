"""A run committed in this process is dispatched at once, not at the dispatcher's next tick."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from sqlalchemy import text

from retrigger.dispatch import wakeup
from retrigger.worker import Worker
from tests.dispatch.conftest import Live

pytestmark = pytest.mark.asyncio(loop_scope="session")

DEADLINE = 60.0  # generous: a loaded 2-core CI machine


async def until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not await check():
        assert loop.time() < deadline, f"no {what} within {DEADLINE:.0f} s"
        await asyncio.sleep(0.05)


class TestWakeup:
    async def test_commit_wakes_subscribers_and_rollback_does_not(self, live: Live) -> None:
        woken: list[int] = []

        def listener() -> None:
            woken.append(1)

        wakeup.subscribe(listener)
        try:
            async with live.db.session_scope() as session:
                wakeup.after_commit(session)
                wakeup.after_commit(session)  # one wake per transaction
            assert woken == [1]
            async with live.db.session_scope() as session:
                await session.execute(text("SELECT 1"))  # a transaction, as a run insert opens
                wakeup.after_commit(session)
                await session.rollback()  # that transaction never commits
            assert woken == [1]
        finally:
            wakeup.unsubscribe(listener)

    async def test_a_fired_decision_is_submitted_without_waiting_for_the_tick(
        self, live: Live
    ) -> None:
        settings = live.settings.model_copy(
            update={"dispatch_interval_seconds": 3600, "scheduler_interval_seconds": 0}
        )
        worker = Worker(live.db, settings, transport_factory=live.transport)
        worker.start()
        try:

            async def first_pass() -> bool:
                return worker.last_pass_at is not None

            await until(first_pass, "first dispatcher pass")  # now it sleeps for an hour
            await live.api.connection()
            await live.api.product("p", stale=False)
            r = await live.api.retrain("p")
            assert r.status_code == 201, r.text
            run_id = int(r.json()["run_id"])

            async def submitted() -> bool:
                return (await live.run(run_id)).state == "submitted"

            await until(submitted, "submission")
        finally:
            await worker.stop()


class TestSingleDispatcherOnSqlite:
    async def test_only_the_lock_holder_dispatches_then_another_takes_over(
        self, live: Live
    ) -> None:
        if live.kind != "sqlite":
            pytest.skip("PostgreSQL shares dispatching between workers (SKIP LOCKED)")
        settings = live.settings.model_copy(update={"scheduler_interval_seconds": 0})
        first = Worker(live.db, settings, transport_factory=live.transport)
        second = Worker(live.db, settings, transport_factory=live.transport)
        passes: list[str] = []

        async def step() -> None:
            passes.append("ran")

        first.start()
        try:

            async def first_leads() -> bool:
                return await first.scheduler.leads()

            await until(first_leads, "the first worker holding the lock")
            gated = second._single_on_sqlite(step)
            await gated()
            assert passes == []  # the second process's dispatcher stays idle
            await live.api.connection()
            await live.api.product("p", stale=False)
            r = await live.api.retrain("p")
            run_id = int(r.json()["run_id"])

            async def submitted() -> bool:
                return (await live.run(run_id)).state == "submitted"

            await until(submitted, "submission by the lock holder")
            await first.stop()  # releases the lock: the next process to ask takes over
            await gated()
            assert passes == ["ran"]
        finally:
            await first.stop()
            await second.scheduler.stop()
