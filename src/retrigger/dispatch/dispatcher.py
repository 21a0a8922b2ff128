"""The dispatcher: claim pending runs, submit them outside any transaction, record the result.

Claiming is a short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, plus a lease written
with a compare-and-set, which is all SQLite needs), so several dispatchers share the work and a
crashed claimer's runs are picked up again when its lease expires. The orchestrator call happens
with no transaction open; its result is written in a new one, only if this dispatcher still holds
the lease. Re-submitting after a crash is safe: every submission carries the run's idempotency key.
"""

from __future__ import annotations

import logging
import os
import random
import socket
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger import metrics
from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.db.types import utcnow
from retrigger.dispatch import runs as run_service
from retrigger.dispatch.lifecycle import RunStatus
from retrigger.dispatch.models import Run, RunAttempt
from retrigger.dispatch.orchestrators import get_orchestrator
from retrigger.dispatch.orchestrators.base import (
    ConnectionConfig,
    RetrainRequest,
    RunRef,
    make_client,
)
from retrigger.dispatch.secrets import SecretUnavailable
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable
from retrigger.logs import log_context

log = logging.getLogger("retrigger.dispatch")

TransportFactory = Callable[[ConnectionConfig], httpx.AsyncBaseTransport | None]
MAX_RETRY_AFTER = timedelta(hours=1)


def worker_id() -> str:
    """Who holds a lease: host and pid, readable in the run's attempts."""
    return f"{socket.gethostname()[:60]}:{os.getpid()}"


@dataclass(frozen=True)
class Outcome:
    """How one submission attempt ended."""

    ref: RunRef | None = None
    error: str | None = None
    error_class: str | None = None
    permanent: bool = False
    retry_after: float | None = None


def classify(exc: BaseException) -> Outcome:
    """Map an adapter or setup error to a retryable or permanent outcome with its class."""
    if isinstance(exc, OrchestratorRejected):
        return Outcome(error=exc.message, error_class="rejected", permanent=True)
    if isinstance(exc, OrchestratorUnavailable):
        cause = exc.__cause__
        if isinstance(cause, httpx.TimeoutException):
            error_class = "timeout"
        elif isinstance(cause, httpx.ConnectError):
            error_class = "connect"
        else:
            error_class = "unavailable"
        return Outcome(error=exc.message, error_class=error_class, retry_after=exc.retry_after)
    if isinstance(exc, SecretUnavailable):
        return Outcome(error=str(exc), error_class="secret")
    return Outcome(error=f"{type(exc).__name__}: {exc}", error_class="internal")


def _adopt_launch(run: Run, ref: RunRef) -> bool:
    """Record the launch of a run that moved on while it was submitted (cancelled through the
    API, or reported by its pipeline's callback first); a cancelled one is then stopped."""
    if run.state == RunStatus.PENDING or run.external_id is not None:
        return False
    run.external_id = ref.external_id
    run.external_url = ref.url
    run.external_data = dict(ref.data)
    run.cancel_pending = run.state == RunStatus.CANCELLED
    return True


async def claim_rows(
    session: AsyncSession,
    settings: Settings,
    due: tuple[ColumnElement[bool], ...],
    values: dict[str, Any],
    limit: int,
) -> list[int]:
    """Mark up to ``limit`` due runs as ours and return their ids.

    PostgreSQL: ``SELECT ... FOR UPDATE SKIP LOCKED`` then a compare-and-set per row, so
    claimers never wait on each other. SQLite: one ``UPDATE ... RETURNING``, so the statement
    takes the write lock first (and waits its busy timeout) instead of failing to upgrade a
    read lock when another process claims at the same moment.
    """
    if settings.is_sqlite:
        chosen = select(Run.id).where(*due).order_by(Run.id).limit(limit).scalar_subquery()
        result = await session.execute(
            update(Run)
            .where(Run.id.in_(chosen), *due)
            .values(**values)
            .returning(Run.id)
            .execution_options(synchronize_session=False)
        )
        return sorted(result.scalars().all())
    query = select(Run.id).where(*due).order_by(Run.id).limit(limit)
    query = query.with_for_update(skip_locked=True)
    claimed: list[int] = []
    for run_id in (await session.execute(query)).scalars().all():
        result = await session.execute(
            update(Run)
            .where(Run.id == run_id, *due)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(run_id)
    return claimed


class Dispatcher:
    """Submits pending runs to their orchestrators, with retries, backoff and leases."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        owner: str | None = None,
        now: Callable[[], datetime] = utcnow,
        transport_factory: TransportFactory | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.settings = settings
        self.owner = owner or worker_id()
        self.now = now
        self.transport_factory = transport_factory
        self.rng = rng

    def backoff(self, attempt: int, retry_after: float | None) -> timedelta:
        """Exponential backoff with jitter (50-100% of the step), at least ``Retry-After``."""
        base = self.settings.dispatch_backoff_base_seconds
        step = min(self.settings.dispatch_backoff_max_seconds, base * 2 ** (attempt - 1))
        delay = timedelta(seconds=step * (0.5 + self.rng() / 2))
        if retry_after is not None:
            delay = max(delay, min(timedelta(seconds=retry_after), MAX_RETRY_AFTER))
        return delay

    async def claim(self) -> list[int]:
        """Lease up to a batch of due pending runs to this dispatcher."""
        now = self.now()
        lease_until = now + timedelta(seconds=self.settings.dispatch_lease_seconds)
        due = (
            Run.state == RunStatus.PENDING.value,
            or_(Run.next_attempt_at.is_(None), Run.next_attempt_at <= now),
            or_(Run.lease_expires_at.is_(None), Run.lease_expires_at < now),
        )
        values = {"lease_owner": self.owner, "lease_expires_at": lease_until}
        limit = self.settings.dispatch_batch_size
        async with self.db.session_scope() as session:
            return await claim_rows(session, self.settings, due, values, limit)

    async def run_once(self) -> int:
        """One pass: claim, then submit each claimed run; returns how many were attempted."""
        claimed = await self.claim()
        for run_id in claimed:
            with log_context(run_id=run_id):
                try:
                    await self.submit(run_id)
                except Exception:  # one broken run must not stop the others
                    log.exception("dispatching run %s failed unexpectedly", run_id)
        return len(claimed)

    async def submit(self, run_id: int) -> None:
        """Submit one claimed run and record the attempt."""
        async with self.db.session_scope() as session:
            run = await session.get(Run, run_id)
            if run is None or run.state != RunStatus.PENDING or run.lease_owner != self.owner:
                return
            kind = run.kind
            request = RetrainRequest(
                idempotency_key=run.idempotency_key,
                run_id=run.id,
                product=str(run.context.get("product", "")),
                pipeline=run.pipeline,
                parameters=dict(run.parameters),
                decision_id=run.decision_id,
                reasons=tuple(run.context.get("reasons") or ()),
                context=dict(run.context),
            )
            created_at = run.created_at
            try:
                config: ConnectionConfig | None = await run_service.connection_config(session, run)
            except Exception as exc:
                config, setup_error = None, exc
        started = self.now()
        if config is None:
            outcome = classify(setup_error)
        else:
            outcome = await self._call(kind, config, request)
        await self._record(run_id, kind, started, outcome, created_at)

    async def _call(self, kind: str, config: ConnectionConfig, request: RetrainRequest) -> Outcome:
        adapter_cls = get_orchestrator(kind)
        transport = self.transport_factory(config) if self.transport_factory else None
        try:
            async with make_client(adapter_cls, config, transport=transport) as http:
                ref = await adapter_cls(config, http).submit(request)
        except Exception as exc:
            outcome = classify(exc)
            if outcome.error_class == "internal":
                log.exception("adapter %s raised unexpectedly", kind)
            return outcome
        return Outcome(ref=ref)

    async def _record(
        self, run_id: int, kind: str, started: datetime, outcome: Outcome, created_at: datetime
    ) -> None:
        now = self.now()
        async with self.db.session_scope() as session:
            query = select(Run).where(Run.id == run_id).execution_options(populate_existing=True)
            if not self.settings.is_sqlite:
                query = query.with_for_update()
            run = (await session.execute(query)).scalar_one_or_none()
            if run is None or run.state != RunStatus.PENDING or run.lease_owner != self.owner:
                if run is not None and outcome.ref is not None and _adopt_launch(run, outcome.ref):
                    log.warning("run %s became %s while it was submitted", run_id, run.state)
                    return
                log.warning("run %s changed hands while it was submitted; result dropped", run_id)
                return
            number = run.attempts + 1
            session.add(
                RunAttempt(
                    run_id=run.id,
                    number=number,
                    started_at=started,
                    finished_at=now,
                    result="submitted" if outcome.ref else "error",
                    error_class=outcome.error_class,
                    error=outcome.error,
                    worker=self.owner,
                )
            )
            if outcome.ref is not None:
                await self._submitted(session, run, outcome.ref, number, now, created_at)
                return
            if outcome.permanent or number >= self.settings.dispatch_max_attempts:
                metrics.observe_dispatch_attempt(kind, "failed", outcome.error_class)
                why = "refused" if outcome.permanent else f"failed {number} times"
                await run_service.transition(
                    session,
                    run,
                    RunStatus.FAILED,
                    cause=f"orchestrator {why}: {outcome.error}",
                    actor="dispatcher",
                    now=now,
                    values={"attempts": number, "last_error": outcome.error},
                )
                log.warning("run %s failed: %s", run_id, outcome.error)
                return
            delay = self.backoff(number, outcome.retry_after)
            run.attempts = number
            run.last_error = outcome.error
            run.next_attempt_at = now + delay
            run.lease_owner = None
            run.lease_expires_at = None
            metrics.observe_dispatch_attempt(kind, "retry", outcome.error_class)
            log.info(
                "run %s attempt %s failed (%s); retry in %.1fs",
                run_id,
                number,
                outcome.error_class,
                delay.total_seconds(),
            )

    async def _submitted(
        self,
        session: AsyncSession,
        run: Run,
        ref: RunRef,
        number: int,
        now: datetime,
        created_at: datetime,
    ) -> None:
        await run_service.transition(
            session,
            run,
            RunStatus.SUBMITTED,
            cause=f"submitted to {run.kind} as {ref.external_id}",
            actor="dispatcher",
            now=now,
            values={
                "attempts": number,
                "external_id": ref.external_id,
                "external_url": ref.url,
                "external_data": dict(ref.data),
                "last_error": None,
                "lease_owner": None,
                "lease_expires_at": None,
                "next_poll_at": now,
            },
        )
        metrics.observe_dispatch_attempt(run.kind, "submitted")
        metrics.observe_decision_to_submit(run.kind, (now - created_at).total_seconds())
        log.info("run %s submitted to %s as %s", run.id, run.kind, ref.external_id)
