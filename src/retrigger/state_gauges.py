"""Gauges that describe the database, refreshed from it by every process.

Runs per state, the oldest active run, model age per product, and the last stored evaluation's
drift statistics and retraining budget are facts of the database, not of the process that
happened to write them. Every API and worker process re-reads them on a timer, so replicas
export the same values (dashboards may take ``max`` across instances without showing a stale
one), a deleted product's series disappear everywhere, and an API process running no worker
still reports a run that nobody dispatches (``RetriggerRunStuck``).

The process that stores an evaluation also sets its gauges at once (``metrics.observe_evaluation``);
the refresh only applies decisions it has not shown yet, so a steady state costs three small
queries per interval.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import select

from retrigger import metrics
from retrigger.db.session import Database
from retrigger.db.types import utcnow

log = logging.getLogger("retrigger.metrics")


class StateGauges:
    """Refreshes the database-backed gauges of this process every ``interval`` seconds."""

    def __init__(
        self,
        db: Database,
        *,
        interval: float,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.db = db
        self.interval = interval
        self.now = now
        self._task: asyncio.Task[None] | None = None

    async def refresh(self) -> None:
        """Read runs, model ages and the newest decision of every product; set the gauges."""
        from retrigger.decisions.models import Decision, ProductState
        from retrigger.dispatch import runs
        from retrigger.products.models import Product

        newest = (
            select(Decision.id)
            .where(Decision.product_id == Product.id)
            .order_by(Decision.evaluated_at.desc(), Decision.id.desc())
            .limit(1)
            .correlate(Product)
            .scalar_subquery()
        )
        newest_evaluated = (
            select(Decision.id)
            .where(Decision.product_id == Product.id, Decision.trigger != "manual")
            .order_by(Decision.evaluated_at.desc(), Decision.id.desc())
            .limit(1)
            .correlate(Product)
            .scalar_subquery()
        )
        products_stmt = select(
            Product.name, ProductState.model_trained_at, newest, newest_evaluated
        ).outerjoin(ProductState, ProductState.product_id == Product.id)
        async with self.db.read_scope() as session:
            counts, oldest = await runs.counts_by_state(session)
            rows = (await session.execute(products_stmt)).all()
            names = {str(row[0]) for row in rows}
            budget_from = {str(name): int(d) for name, _, d, _ in rows if d is not None}
            drift_from = {str(name): int(d) for name, _, _, d in rows if d is not None}
            wanted = {
                d
                for name, d in budget_from.items()
                if metrics.applied_decision(name, "budget") != d
            } | {
                d for name, d in drift_from.items() if metrics.applied_decision(name, "drift") != d
            }
            decisions: dict[int, tuple[list[dict[str, Any]], dict[str, Any]]] = {}
            if wanted:
                found = await session.execute(
                    select(Decision.id, Decision.findings, Decision.inputs).where(
                        Decision.id.in_(sorted(wanted))
                    )
                )
                decisions = {int(i): (list(f or []), dict(inp or {})) for i, f, inp in found}
        now = self.now()
        metrics.set_run_counts(counts, oldest)
        metrics.set_model_ages(
            {
                str(name): max((now - trained).total_seconds(), 0.0)
                for name, trained, _, _ in rows
                if trained is not None
            }
        )
        for name, decision_id in drift_from.items():
            if decision_id in decisions:
                metrics.show_drift(name, decision_id, decisions[decision_id][0])
        for name, decision_id in budget_from.items():
            if decision_id in decisions:
                budget = decisions[decision_id][1].get("budget_remaining")
                metrics.show_budget(name, decision_id, budget if isinstance(budget, int) else None)
        metrics.forget_products_except(names)

    async def _loop(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                log.exception("refreshing the state gauges failed")
            await asyncio.sleep(self.interval)

    def start(self) -> None:
        """Refresh now and then every interval, on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(
                self._loop(), name="retrigger state gauges"
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
