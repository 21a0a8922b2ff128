"""Background evaluation: debounced after ingestion, and periodic for time-based rules.

``notify(product_id)`` is called after a signal batch commits; the product is evaluated once the
debounce delay passes without new notifications (a burst of batches costs one evaluation), and
ingestion never waits for it. The periodic loop evaluates products whose policy has ``staleness``
or ``schedule`` rules, refreshes the model-age gauge, and runs the retention cleanup hourly; only
one process runs it (PostgreSQL advisory lock, or a lock file next to the SQLite database), so N
replicas do not evaluate N times.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from retrigger import metrics
from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.db.types import utcnow
from retrigger.decisions.leader import LeaderLock
from retrigger.decisions.schemas import Trigger

log = logging.getLogger("retrigger.scheduler")

TIME_RULES = frozenset({"staleness", "schedule"})
CLEANUP_EVERY = timedelta(hours=1)


class EvaluationScheduler:
    """Runs evaluations in the background of a ``serve`` or ``worker`` process."""

    def __init__(
        self, db: Database, settings: Settings, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self._pending: dict[int, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._periodic: asyncio.Task[None] | None = None
        self._leader = LeaderLock(db, settings)
        self._stopping = False

    # --- debounced after ingestion -----------------------------------------------------------

    def notify(self, product_id: int) -> None:
        """A batch for ``product_id`` committed: (re)start its debounce timer."""
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        handle = self._pending.pop(product_id, None)
        if handle is not None:
            handle.cancel()
        self._pending[product_id] = loop.call_later(
            self.settings.evaluation_debounce_seconds, self._spawn, product_id, Trigger.ingest
        )

    def _spawn(self, product_id: int, trigger: Trigger) -> None:
        self._pending.pop(product_id, None)
        task = asyncio.get_running_loop().create_task(self.evaluate(product_id, trigger))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def evaluate(self, product_id: int, trigger: Trigger) -> None:
        """Evaluate one product in its own unit of work; errors are logged, never raised."""
        from retrigger.decisions import service as decision_service
        from retrigger.decisions.errors import NoPolicy
        from retrigger.products.models import Product

        try:
            async with self.db.session_scope() as session:
                product = await session.get(Product, product_id)
                if product is None:
                    return
                await decision_service.evaluate(
                    session, product=product, trigger=trigger, actor="system", now=self.now()
                )
        except NoPolicy:
            return
        except Exception:
            metrics.EVALUATION_ERRORS.labels(trigger.value).inc()
            log.exception("background evaluation of product %s failed", product_id)

    # --- periodic ------------------------------------------------------------------------------

    async def due_products(self) -> list[int]:
        """Products whose current policy has time-based rules."""
        from retrigger.policies.repository import PolicyVersionRepository
        from retrigger.products.repository import ProductRepository

        async with self.db.session_scope() as session:
            ids = await ProductRepository(session).all_ids()
            latest = await PolicyVersionRepository(session).latest_by_product(ids)
        due = []
        for product_id, version in latest.items():
            rules = version.effective.get("policy", {}).get("rules", [])
            if any(rule.get("type") in TIME_RULES for rule in rules):
                due.append(product_id)
        return sorted(due)

    async def tick(self) -> int:
        """One periodic pass; returns how many products were evaluated."""
        products = await self.due_products()
        for product_id in products:
            if self._stopping:
                break
            await self.evaluate(product_id, Trigger.schedule)
        await self.refresh_model_age()
        return len(products)

    async def refresh_model_age(self) -> None:
        """Set ``retrigger_model_age_seconds`` of every product whose training time is known."""
        from sqlalchemy import select

        from retrigger.decisions.models import ProductState
        from retrigger.products.models import Product

        stmt = (
            select(Product.name, ProductState.model_trained_at)
            .join(ProductState, ProductState.product_id == Product.id)
            .where(ProductState.model_trained_at.is_not(None))
        )
        async with self.db.session_scope() as session:
            rows = (await session.execute(stmt)).all()
        now = self.now()
        metrics.set_model_ages(
            {name: max((now - trained).total_seconds(), 0.0) for name, trained in rows if trained}
        )

    async def cleanup(self) -> dict[str, int]:
        """Delete signals past their retention (``RETRIGGER_RETENTION_*``)."""
        from retrigger.signals.retention import cleanup

        async with self.db.session_scope() as session:
            deleted = await cleanup(session, settings=self.settings, now=self.now())
        if any(deleted.values()):
            log.info("retention cleanup deleted %s", deleted)
        return deleted

    async def _loop(self) -> None:
        interval = self.settings.scheduler_interval_seconds
        last_cleanup: datetime | None = None
        while not self._stopping:
            try:
                if await self._leader.acquire():
                    await self.tick()
                    now = self.now()
                    if last_cleanup is None or now - last_cleanup >= CLEANUP_EVERY:
                        last_cleanup = now
                        await self.cleanup()
            except Exception:
                log.exception("scheduler pass failed")
            await asyncio.sleep(interval)

    def start(self) -> None:
        if self.settings.scheduler_interval_seconds > 0 and self._periodic is None:
            self._periodic = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Cancel timers and the loop; let running evaluations finish (bounded)."""
        self._stopping = True
        for handle in self._pending.values():
            handle.cancel()
        self._pending.clear()
        if self._periodic is not None:
            self._periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._periodic
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        await self._leader.release()


async def notify_ingested(state: Any, product_id: int) -> None:
    """After a signal batch committed: schedule the product's debounced evaluation, if enabled.

    Async on purpose: as a background task it then runs on the event loop, not in a thread.
    """
    scheduler: EvaluationScheduler | None = getattr(state, "scheduler", None)
    if scheduler is not None:
        scheduler.notify(product_id)
