"""The dispatcher: claim pending runs, submit them outside any transaction, record the result.

Claiming is a short transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL, plus a lease written
with a compare-and-set, which is all SQLite needs), so several dispatchers share the work and a
crashed claimer's runs are picked up again when its lease expires. Before each submission the
lease is renewed with a compare-and-set that also requires it to be unexpired, so a run whose lease
ran out while earlier runs of the batch were submitted is left to whoever claims it next; the
orchestrator call itself is bounded by the lease less a margin (:func:`call_budget`), so it ends
while the run is still ours. The call happens with no transaction open; its result is written in
a new one, only if this dispatcher still holds the lease. Re-submitting after a crash is safe:
every submission carries the run's idempotency key.
"""

from __future__ import annotations

import asyncio
import dataclasses
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
LEASE_MARGIN_SECONDS = 10.0
"""Part of a lease kept free around the orchestrator call, for the database writes before and
after it (at most a quarter of a short lease)."""


def call_budget(settings: Settings) -> float:
    """Seconds one orchestrator call of a claimed run may take: the lease less a margin.

    Connections whose ``timeout_seconds`` is longer are clamped to it at dispatch time.
    """
    lease = settings.dispatch_lease_seconds
    return lease - min(LEASE_MARGIN_SECONDS, lease / 4)


def backoff_delay(
    settings: Settings, attempt: int, retry_after: float | None, rng: Callable[[], float]
) -> timedelta:
    """Exponential backoff with jitter (50-100% of the step), at least ``Retry-After``."""
    base = settings.dispatch_backoff_base_seconds
    step = min(settings.dispatch_backoff_max_seconds, base * 2 ** (attempt - 1))
    delay = timedelta(seconds=step * (0.5 + rng() / 2))
    if retry_after is not None:
        delay = max(delay, min(timedelta(seconds=retry_after), MAX_RETRY_AFTER))
    return delay


_CLAMPED: set[str] = set()
"""Connections already warned about in this process (one warning each, not one per call)."""


def clamp_timeout(config: ConnectionConfig, budget: float) -> ConnectionConfig:
    """``config`` with its per-request timeout cut to ``budget`` when it is longer."""
    if config.timeout_seconds <= budget:
        return config
    if config.name not in _CLAMPED:
        _CLAMPED.add(config.name)
        log.warning(
            "connection %s: timeout_seconds %g does not fit in the dispatch lease; "
            "calls are cut to %g s (raise RETRIGGER_DISPATCH_LEASE_SECONDS to allow more)",
            config.name,
            config.timeout_seconds,
            budget,
        )
    return dataclasses.replace(config, timeout_seconds=budget)


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
        return backoff_delay(self.settings, attempt, retry_after, self.rng)

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

    async def renew(self, session: AsyncSession, run_id: int) -> bool:
        """Extend our unexpired lease on a pending run by a full lease; False if it is not ours
        any more (expired, claimed by another dispatcher, or the run moved on)."""
        now = self.now()
        result = await session.execute(
            update(Run)
            .where(
                Run.id == run_id,
                Run.state == RunStatus.PENDING.value,
                Run.lease_owner == self.owner,
                Run.lease_expires_at > now,
            )
            .values(lease_expires_at=now + timedelta(seconds=self.settings.dispatch_lease_seconds))
            .execution_options(synchronize_session=False)
        )
        return result.rowcount == 1  # type: ignore[attr-defined, no-any-return]

    async def submit(self, run_id: int) -> None:
        """Submit one claimed run and record the attempt; skipped if its lease is lost."""
        claimed = await self._load(run_id)
        if claimed is None:
            return
        request, kind, created_at, config = claimed
        product = request.product or None
        with log_context(run_id=run_id, decision_id=request.decision_id, product=product):
            started = self.now()
            if isinstance(config, Exception):
                outcome = classify(config)
            else:
                outcome = await self._call(kind, config, request)
            await self._record(run_id, kind, started, outcome, created_at)

    async def _load(
        self, run_id: int
    ) -> tuple[RetrainRequest, str, datetime, ConnectionConfig | Exception] | None:
        """Renew the lease and read what the submission needs, in one short transaction."""
        async with self.db.session_scope() as session:
            if not await self.renew(session, run_id):
                log.info("run %s: lease expired or taken over before submission; skipped", run_id)
                return None
            run = await session.get(Run, run_id, populate_existing=True)
            if run is None:
                return None
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
            config: ConnectionConfig | Exception
            try:
                config = await run_service.connection_config(session, run)
            except Exception as exc:  # a secret that does not resolve here, mostly
                config = exc
            return request, run.kind, run.created_at, config

    async def _call(self, kind: str, config: ConnectionConfig, request: RetrainRequest) -> Outcome:
        adapter_cls = get_orchestrator(kind)
        budget = call_budget(self.settings)
        config = clamp_timeout(config, budget)
        transport = self.transport_factory(config) if self.transport_factory else None
        deadline = asyncio.timeout(budget)
        try:
            async with deadline, make_client(adapter_cls, config, transport=transport) as http:
                ref = await adapter_cls(config, http).submit(request)
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                # cut while the lease still holds: the retry is ours, or the next claimer's once
                # the lease is released; the idempotency key finds a launch that did happen
                error = f"no answer within {budget:g}s (the dispatch lease less a margin)"
                return Outcome(error=error, error_class="timeout")
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
