"""Background loops: dispatcher, run-status poller and periodic evaluation.

``retrigger worker`` runs them as their own process for production; ``retrigger serve`` runs
them in-process for the embedded default (``RETRIGGER_EMBEDDED_WORKER``). Each loop survives
its own errors; ``wake()`` makes the dispatcher look for new runs now instead of at its next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from retrigger import metrics
from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.decisions.scheduler import EvaluationScheduler
from retrigger.dispatch import wakeup
from retrigger.dispatch.dispatcher import Dispatcher, TransportFactory
from retrigger.dispatch.poller import StatusPoller
from retrigger.state_gauges import StateGauges

log = logging.getLogger("retrigger.worker")


class Worker:
    """Owns the background loops of one process."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        scheduler: EvaluationScheduler | None = None,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.scheduler = scheduler or EvaluationScheduler(db, settings)
        self._own_scheduler = scheduler is None
        self.dispatcher = Dispatcher(db, settings, transport_factory=transport_factory)
        self.poller = StatusPoller(db, settings, transport_factory=transport_factory)
        self.last_pass_at: float | None = None
        """``time.monotonic()`` when the dispatcher last finished a pass, failed or not (the
        liveness heartbeat ``retrigger worker``'s ``/healthz`` watches)."""
        self._wake = asyncio.Event()
        self._tasks: list[asyncio.Task[Any]] = []
        self._stopping = False

    def wake(self) -> None:
        """New pending runs exist: dispatch without waiting for the next tick."""
        self._wake.set()

    async def _loop(
        self, name: str, interval: float, step: Callable[[], Awaitable[Any]], *, wakeable: bool
    ) -> None:
        while not self._stopping:
            try:
                await step()
            except Exception:
                log.exception("%s pass failed", name)
            if name == "dispatcher":
                # a heartbeat of the loop, failed passes included: a database outage shows in
                # readiness and logs; restarting the worker for it would not help
                self.last_pass_at = time.monotonic()
                metrics.worker_heartbeat()
            if wakeable:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), timeout=interval)
                self._wake.clear()
            else:
                await asyncio.sleep(interval)

    def _single_on_sqlite(self, step: Callable[[], Awaitable[Any]]) -> Callable[[], Awaitable[Any]]:
        """On SQLite only the process holding the scheduler's lock file dispatches and polls
        (``serve --workers N`` starts an embedded worker per process): one writer, not N
        competing for SQLite's single write lock. PostgreSQL shares the work (SKIP LOCKED)."""
        if not self.settings.is_sqlite:
            return step

        async def gated() -> Any:
            if await self.scheduler.leads():
                return await step()
            return None

        return gated

    def start(self) -> None:
        """Start every loop on the running event loop."""
        settings = self.settings
        if self._own_scheduler:
            self.scheduler.start()
        loops = (
            (
                "dispatcher",
                settings.dispatch_interval_seconds,
                self._single_on_sqlite(self.dispatcher.run_once),
                True,
            ),
            (
                "status poller",
                min(settings.status_poll_interval_seconds, 5.0),
                self._single_on_sqlite(self.poller.run_once),
                False,
            ),
        )
        wakeup.subscribe(self.wake)
        for name, interval, step, wakeable in loops:
            task = asyncio.get_running_loop().create_task(
                self._loop(name, interval, step, wakeable=wakeable), name=f"retrigger {name}"
            )
            self._tasks.append(task)
        log.info("worker loops started: dispatcher, status poller")

    async def stop(self) -> None:
        """Stop the loops; a submission in flight is abandoned to its lease."""
        self._stopping = True
        wakeup.unsubscribe(self.wake)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()
        if self._own_scheduler:
            await self.scheduler.stop()


async def run_forever(
    settings: Settings,
    *,
    stop: asyncio.Event | None = None,
    on_started: Callable[[Worker], None] | None = None,
) -> None:
    """The ``retrigger worker`` process: loops until SIGTERM/SIGINT (or ``stop`` is set).

    ``on_started`` receives the running worker (the health endpoint watches its heartbeat).
    """
    import signal

    db = Database.from_settings(settings)
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    metrics.DB_POOL.pool = db.engine.pool
    gauges = StateGauges(db, interval=settings.state_gauges_interval_seconds)
    gauges.start()
    worker = Worker(db, settings)
    worker.start()
    if on_started is not None:
        on_started(worker)
    try:
        await stop.wait()
    finally:
        log.info("worker stopping")
        await worker.stop()
        await gauges.stop()
        await db.dispose()
