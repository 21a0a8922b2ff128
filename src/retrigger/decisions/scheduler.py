"""Background evaluation: after ingestion (debounced, with a maximum delay), and periodic.

Every ingest transaction marks its product in the database (``product_states.dirty_since``,
:func:`mark_dirty`); the evaluation that reads those signals clears the mark. Two paths evaluate
marked products:

- the fast path, in the process that ingested: ``notify(product_id)`` after the commit arms a
  timer that fires once the debounce delay passes without new notifications (a burst of batches
  costs one evaluation), but never later than the maximum delay after the burst's first batch;
- the backstop, in the periodic pass of the leading process: every product whose mark is older
  than the maximum delay, so an evaluation lost to a restart, or owed by a process that runs no
  scheduler (``RETRIGGER_BACKGROUND_EVALUATION=false``), still happens.

The periodic pass also evaluates products whose policy has ``staleness`` or ``schedule`` rules,
refreshes the model-age gauge, and runs the retention cleanup hourly. Only one process runs it
(PostgreSQL advisory lock, or a lock file next to the SQLite database), so N replicas do not
evaluate N times. Ingestion never waits for an evaluation.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger import logs, metrics
from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.db.types import utcnow
from retrigger.decisions.leader import LeaderLock
from retrigger.decisions.models import ProductState
from retrigger.decisions.schemas import Trigger

log = logging.getLogger("retrigger.scheduler")

TIME_RULES = frozenset({"staleness", "schedule"})
CLEANUP_EVERY = timedelta(hours=1)
STATE_TABLE = cast(Table, ProductState.__table__)


# --- durable marks -------------------------------------------------------------------------------


async def mark_dirty(session: AsyncSession, product_ids: Iterable[int], *, now: datetime) -> None:
    """In an ingest transaction: these products have signals that no evaluation has read yet.

    Only a clean product's row is written (``dirty_since`` set once, to the first such signal),
    so steady traffic reads the row and never waits on it; a product never evaluated has no
    state row yet, and gets one.
    """
    ids = sorted(set(product_ids))
    if not ids:
        return
    stmt = select(ProductState.product_id, ProductState.dirty_since).where(
        ProductState.product_id.in_(ids)
    )
    marks = {row.product_id: row.dirty_since for row in (await session.execute(stmt)).all()}
    clean = [p for p in ids if p in marks and marks[p] is None]
    if clean:
        await session.execute(
            update(ProductState)
            .where(ProductState.product_id.in_(clean), ProductState.dirty_since.is_(None))
            .values(dirty_since=now)
        )
    missing = [p for p in ids if p not in marks]
    if missing:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        rows = [
            {
                "product_id": p,
                "detectors": {},
                "schedules": {},
                "history": {},
                "fired_at": [],
                "dirty_since": now,
                "updated_at": now,
            }
            for p in missing
        ]
        stmt_insert = insert(STATE_TABLE).values(rows)
        # a first evaluation may have created the row meanwhile: mark it if it is clean
        await session.execute(
            stmt_insert.on_conflict_do_update(
                index_elements=["product_id"],
                set_={"dirty_since": stmt_insert.excluded.dirty_since},
                where=STATE_TABLE.c.dirty_since.is_(None),
            )
        )


async def clear_dirty(session: AsyncSession, product_id: int, *, read_at: datetime) -> None:
    """Clear a mark set at or before ``read_at`` (a product with nothing to evaluate)."""
    await session.execute(
        update(ProductState)
        .where(ProductState.product_id == product_id, ProductState.dirty_since <= read_at)
        .values(dirty_since=None)
    )


@dataclass(frozen=True)
class _Mark:
    dirty_since: datetime | None
    last_evaluated_at: datetime | None


async def _lock_mark(session: AsyncSession, product_id: int) -> _Mark | None:
    """The product's mark, its state row locked until the transaction ends (None: no row)."""
    stmt = (
        select(ProductState.dirty_since, ProductState.last_evaluated_at)
        .where(ProductState.product_id == product_id)
        .with_for_update()
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else _Mark(row.dirty_since, row.last_evaluated_at)


Wanted = Callable[[_Mark | None], bool]
"""Checked under the state lock, just before evaluating: False skips the evaluation."""


@dataclass
class _Pending:
    handle: asyncio.TimerHandle
    deadline: float  # loop time past which the timer is never re-armed
    notified_at: datetime  # the last notification: an evaluation started since covers the burst


class EvaluationScheduler:
    """Runs evaluations in the background of a ``serve`` or ``worker`` process."""

    def __init__(
        self, db: Database, settings: Settings, *, now: Callable[[], datetime] = utcnow
    ) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self._pending: dict[int, _Pending] = {}
        self._tasks: set[asyncio.Task[Any]] = set()
        self._periodic: asyncio.Task[None] | None = None
        self._leader = LeaderLock(db, settings)
        self._stopping = False

    @property
    def max_delay(self) -> float:
        """Seconds a product's signals wait for an evaluation at most (never below the debounce)."""
        return max(
            self.settings.evaluation_max_delay_seconds, self.settings.evaluation_debounce_seconds
        )

    # --- debounced after ingestion (the fast path) ---------------------------------------------

    def notify(self, product_id: int) -> None:
        """A batch for ``product_id`` committed: (re)arm its timer, never past the deadline."""
        if self._stopping:
            return
        loop = asyncio.get_running_loop()
        at = loop.time()
        pending = self._pending.pop(product_id, None)
        if pending is None:
            deadline = at + self.max_delay
        else:
            pending.handle.cancel()
            deadline = pending.deadline
        fire_at = min(at + self.settings.evaluation_debounce_seconds, deadline)
        handle = loop.call_at(fire_at, self._spawn, product_id)
        self._pending[product_id] = _Pending(handle, deadline, self.now())

    def _spawn(self, product_id: int) -> None:
        pending = self._pending.pop(product_id, None)
        if pending is None:  # pragma: no cover - a cancelled handle does not run
            return
        notified_at = pending.notified_at

        def wanted(mark: _Mark | None) -> bool:
            # another process's (or the backstop's) evaluation started after the last batch
            # committed: it read the whole burst
            evaluated = mark.last_evaluated_at if mark is not None else None
            return evaluated is None or evaluated < notified_at

        task = asyncio.get_running_loop().create_task(
            self.evaluate(product_id, Trigger.ingest, wanted=wanted)
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def evaluate(
        self, product_id: int, trigger: Trigger, *, wanted: Wanted | None = None
    ) -> bool:
        """Evaluate one product in its own unit of work; True if a decision was stored.

        ``wanted`` is checked with the product's state row locked, so two processes that both
        meant to evaluate the same signals store one decision. Errors are logged, never raised.
        """
        from retrigger.decisions import service as decision_service
        from retrigger.decisions.errors import NoPolicy
        from retrigger.products.models import Product

        now: datetime | None = None
        product: Product | None = None
        try:
            async with self.db.session_scope() as session:
                if wanted is not None and not wanted(await _lock_mark(session, product_id)):
                    return False
                product = await session.get(Product, product_id)
                if product is None:
                    return False
                now = self.now()
                await decision_service.evaluate(
                    session, product=product, trigger=trigger, actor="system", now=now
                )
            return True
        except NoPolicy:
            # nothing to evaluate: the signals need no evaluation until a policy exists
            async with self.db.session_scope() as session:
                await clear_dirty(session, product_id, read_at=now or self.now())
            return False
        except Exception:
            metrics.EVALUATION_ERRORS.labels(trigger.value).inc()
            name = product.name if product is not None else f"#{product_id}"
            with logs.log_context(product=name):
                log.exception("background evaluation of product %s failed", name)
            return False

    # --- periodic ------------------------------------------------------------------------------

    async def due_products(self) -> list[int]:
        """Products whose current policy has time-based rules."""
        from retrigger.policies.repository import PolicyVersionRepository
        from retrigger.products.repository import ProductRepository

        due = []
        async with self.db.read_scope() as session:  # rolled back: read the rows inside
            ids = await ProductRepository(session).all_ids()
            latest = await PolicyVersionRepository(session).latest_by_product(ids)
            for product_id, version in latest.items():
                rules = version.effective.get("policy", {}).get("rules", [])
                if any(rule.get("type") in TIME_RULES for rule in rules):
                    due.append(product_id)
        return sorted(due)

    async def overdue_products(self, cutoff: datetime) -> list[int]:
        """Products whose signals have waited for an evaluation since ``cutoff`` or earlier."""
        stmt = (
            select(ProductState.product_id)
            .where(ProductState.dirty_since.is_not(None), ProductState.dirty_since <= cutoff)
            .order_by(ProductState.dirty_since)
        )
        async with self.db.read_scope() as session:
            return list((await session.execute(stmt)).scalars().all())

    async def tick(self) -> int:
        """One periodic pass; returns how many products were evaluated (or tried)."""
        cutoff = self.now() - timedelta(seconds=self.max_delay)

        def overdue(mark: _Mark | None) -> bool:
            # still waiting (no fast-path evaluation took them meanwhile)
            return mark is not None and mark.dirty_since is not None and mark.dirty_since <= cutoff

        evaluated: set[int] = set()
        for product_id in await self.overdue_products(cutoff):
            if self._stopping:
                return len(evaluated)
            if await self.evaluate(product_id, Trigger.ingest, wanted=overdue):
                evaluated.add(product_id)
        tried = len(evaluated)
        for product_id in await self.due_products():
            if self._stopping:
                break
            if product_id not in evaluated:  # that evaluation applied the time rules too
                await self.evaluate(product_id, Trigger.schedule)
                tried += 1
        await self.refresh_model_age()
        return tried

    async def refresh_model_age(self) -> None:
        """Set ``retrigger_model_age_seconds`` of every product whose training time is known."""
        from retrigger.products.models import Product

        stmt = (
            select(Product.name, ProductState.model_trained_at)
            .join(ProductState, ProductState.product_id == Product.id)
            .where(ProductState.model_trained_at.is_not(None))
        )
        async with self.db.read_scope() as session:
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
                # re-validated on every pass: a leader whose lock died steps down
                if await self._leader.acquire():
                    await self.tick()
                    now = self.now()
                    if last_cleanup is None or now - last_cleanup >= CLEANUP_EVERY:
                        last_cleanup = now
                        await self.cleanup()
            except Exception:
                # no product was evaluated this pass: an error worth alerting on as well
                metrics.EVALUATION_ERRORS.labels(Trigger.schedule.value).inc()
                log.exception("scheduler pass failed")
            await asyncio.sleep(interval)

    def start(self) -> None:
        if self.settings.scheduler_interval_seconds > 0 and self._periodic is None:
            self._periodic = asyncio.get_running_loop().create_task(self._loop())

    async def stop(self) -> None:
        """Cancel timers and the loop; let running evaluations finish (bounded).

        A cancelled timer loses nothing: its product stays marked in the database, and the
        backstop of whichever process leads next evaluates it.
        """
        self._stopping = True
        for pending in self._pending.values():
            pending.handle.cancel()
        self._pending.clear()
        if self._periodic is not None:
            self._periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._periodic
        if self._tasks:
            await asyncio.wait(self._tasks, timeout=10)
        await self._leader.release()

    async def leads(self) -> bool:
        """Whether this process holds the scheduler lock (taking it if it is free)."""
        return await self._leader.acquire()


async def notify_ingested(state: Any, product_id: int) -> None:
    """After a signal batch committed: schedule the product's debounced evaluation, if enabled.

    Async on purpose: as a background task it then runs on the event loop, not in a thread.
    """
    scheduler: EvaluationScheduler | None = getattr(state, "scheduler", None)
    if scheduler is not None:
        scheduler.notify(product_id)
