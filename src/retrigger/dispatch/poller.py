"""The status poller: follows submitted runs on their orchestrator until they end.

Each pass claims due runs by moving their ``next_poll_at`` forward in a short transaction (so
pollers in several processes do not poll the same run twice), asks the orchestrators outside any
transaction, and records what changed. A run the orchestrator keeps refusing to report on (a
deleted run answers 404) fails after ``status_poll_max_failures`` refusals in a row; a run with no
final state ``run_max_duration`` after its submission fails, and one awaiting approval for
``approval_timeout`` is rejected, so a lost run never blocks its product for good.

The poller also carries out cancellations requested through the API for runs already launched:
claimed with a compare-and-set on ``cancel_next_at``, retried with the dispatcher's backoff, and
given up after ``dispatch_max_attempts`` (or at once when the orchestrator refuses) with the
error stored on the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.db.types import utcnow
from retrigger.dispatch import runs as run_service
from retrigger.dispatch.dispatcher import (
    TransportFactory,
    backoff_delay,
    call_budget,
    claim_rows,
    clamp_timeout,
)
from retrigger.dispatch.lifecycle import RunStatus
from retrigger.dispatch.models import Run
from retrigger.dispatch.orchestrators import get_orchestrator
from retrigger.dispatch.orchestrators.base import (
    ConnectionConfig,
    Orchestrator,
    RemoteStatus,
    RunRef,
    RunState,
    make_client,
)
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable, RetriggerError
from retrigger.logs import log_context
from retrigger.policies.durations import format_duration

log = logging.getLogger("retrigger.dispatch")

_FOLLOW = {
    RunState.RUNNING: RunStatus.RUNNING,
    RunState.SUCCEEDED: RunStatus.SUCCEEDED,
    RunState.FAILED: RunStatus.FAILED,
    RunState.CANCELLED: RunStatus.CANCELLED,
}
POLL_NOTE = "status poll"
"""How ``status_detail`` notes written by a failed poll begin (a good poll clears them)."""
SWEEP_LIMIT = 100
"""Overdue runs expired per pass, to keep the transaction short; the next pass takes the rest."""


def _message(exc: BaseException, budget: float) -> str:
    if isinstance(exc, RetriggerError):
        return exc.message[:1000]
    if isinstance(exc, TimeoutError):  # our own bound on the call
        return f"no answer within {budget:g}s"
    return (str(exc) or type(exc).__name__)[:1000]


def _duration(seconds: float) -> str:
    """``2d``, ``36h``, or ``1.5s`` for what the policy syntax cannot spell."""
    if seconds >= 1 and float(seconds).is_integer():
        return format_duration(timedelta(seconds=seconds))
    return f"{seconds:g}s"


class StatusPoller:
    """Polls non-terminal runs (configurable interval), expires overdue ones and sends
    requested cancellations."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        now: Callable[[], datetime] = utcnow,
        transport_factory: TransportFactory | None = None,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self.transport_factory = transport_factory
        self.rng = rng

    async def claim(self) -> list[int]:
        """Due submitted/running runs, their next poll pushed one interval ahead."""
        now = self.now()
        due = (
            Run.state.in_([RunStatus.SUBMITTED.value, RunStatus.RUNNING.value]),
            or_(Run.next_poll_at.is_(None), Run.next_poll_at <= now),
        )
        later = now + timedelta(seconds=self.settings.status_poll_interval_seconds)
        async with self.db.session_scope() as session:
            return await claim_rows(session, self.settings, due, {"next_poll_at": later}, 100)

    async def run_once(self) -> int:
        """One pass: poll due runs, expire overdue ones, send pending cancellations; returns
        runs polled."""
        claimed = await self.claim()
        for run_id in claimed:
            with log_context(run_id=run_id):
                try:
                    await self.poll(run_id)
                except Exception:
                    log.exception("polling run %s failed unexpectedly", run_id)
        await self.expire_overdue()
        await self.send_cancellations()
        return len(claimed)

    async def _remote(self, run_id: int) -> tuple[Run, ConnectionConfig | Exception] | None:
        """The launched run (detached) and its connection, or why the connection is unusable."""
        async with self.db.session_scope() as session:
            run = await session.get(Run, run_id)
            if run is None or run.external_id is None:
                return None
            config: ConnectionConfig | Exception
            try:
                config = await run_service.connection_config(session, run)
            except Exception as exc:  # a secret that does not resolve in this process
                config = exc
            session.expunge(run)
            return run, config

    async def poll(self, run_id: int) -> None:
        """Ask the orchestrator about one run and follow its state."""
        found = await self._remote(run_id)
        if found is None:
            return
        run, config = found
        adapter_cls = get_orchestrator(run.kind)
        if not adapter_cls.reports_status:
            return
        with run_service.log_scope(run):
            if isinstance(config, Exception):
                await self._poll_failed(run_id, config)
                return
            try:
                async with self._adapter(run, config) as (adapter, ref):
                    status = await adapter.get_status(ref)
            except Exception as exc:  # counted if permanent; the next poll tries again
                await self._poll_failed(run_id, exc)
                return
            await self.record(run_id, status, actor="poller")

    @contextlib.asynccontextmanager
    async def _adapter(
        self, run: Run, config: ConnectionConfig
    ) -> AsyncIterator[tuple[Orchestrator, RunRef]]:
        """The run's adapter and ref, its calls bounded as a dispatch's are (``call_budget``)."""
        adapter_cls = get_orchestrator(run.kind)
        budget = call_budget(self.settings)
        config = clamp_timeout(config, budget)
        transport = self.transport_factory(config) if self.transport_factory else None
        async with (
            asyncio.timeout(budget),
            make_client(adapter_cls, config, transport=transport) as http,
        ):
            ref = RunRef(run.external_id or "", run.external_url, dict(run.external_data))
            yield adapter_cls(config, http), ref

    async def _poll_failed(self, run_id: int, exc: Exception) -> None:
        """Note a failed poll on the run; refusals in a row past the limit fail it."""
        message = _message(exc, call_budget(self.settings))
        limit = self.settings.status_poll_max_failures
        async with self.db.session_scope() as session:
            run = await session.get(Run, run_id, populate_existing=True)
            if run is None or RunStatus(run.state).terminal:
                return
            if not isinstance(exc, OrchestratorRejected):
                # unreachable, timed out, or a secret missing here: says nothing about the run
                run.status_detail = f"{POLL_NOTE} failed, will retry: {message}"
                log.warning("run %s: status poll failed, will retry: %s", run_id, message)
                return
            failures = run.poll_failures + 1
            if failures < limit:
                run.poll_failures = failures
                run.last_error = message
                run.status_detail = (
                    f"{POLL_NOTE} refused ({failures} in a row; the run fails at {limit}): "
                    f"{message}"
                )
                log.warning(
                    "run %s: status poll refused (%s of %s): %s", run_id, failures, limit, message
                )
                return
            cause = f"{run.kind} refused {failures} status polls in a row: {message}"
            await run_service.transition(
                session,
                run,
                RunStatus.FAILED,
                cause=cause,
                actor="poller",
                values={"poll_failures": failures, "last_error": message, "status_detail": cause},
            )
            log.warning("run %s failed: %s", run_id, cause)

    async def record(self, run_id: int, status: RemoteStatus, *, actor: str) -> None:
        """Follow a reported remote state: detail always, state only forward."""
        async with self.db.session_scope() as session:
            run = await session.get(Run, run_id, populate_existing=True)
            if run is None:
                return
            run.poll_failures = 0
            stale = run.status_detail is not None and run.status_detail.startswith(POLL_NOTE)
            kept = None if stale else run.status_detail
            run.status_detail = (status.detail or "")[:2000] or kept
            if status.ref is not None and not RunStatus(run.state).terminal:
                run.external_id = status.ref.external_id
                run.external_url = status.ref.url or run.external_url
                run.external_data = dict(status.ref.data)
            target = _FOLLOW.get(status.state)
            if target is None or RunStatus(run.state).terminal:
                return
            values: dict[str, object] = {}
            model_version = status.outputs.get("model_version")
            if target is RunStatus.SUCCEEDED and model_version:
                values["model_version"] = str(model_version)[:200]
            if status.outputs:
                values["outputs"] = {**run.outputs, **dict(status.outputs)}
            if target is RunStatus.FAILED:
                values["last_error"] = status.detail or "the pipeline failed"
            await run_service.transition(
                session,
                run,
                target,
                cause=f"{run.kind} reports {status.state.value}: {status.detail}".strip(": "),
                actor=actor,
                values=values,
            )

    # --- overdue runs -----------------------------------------------------------------------

    async def expire_overdue(self) -> int:
        """Fail runs with no final state ``run_max_duration`` after submission (their pipeline
        is asked to stop) and reject runs awaiting approval for ``approval_timeout``; returns
        how many runs were ended."""
        now = self.now()
        ended = 0
        max_duration = self.settings.run_max_duration
        approval_timeout = self.settings.approval_timeout
        async with self.db.session_scope() as session:
            if max_duration > 0:
                cause = (
                    f"no terminal state after {_duration(max_duration)} since submission "
                    "(RETRIGGER_RUN_MAX_DURATION); the pipeline is asked to stop"
                )
                ended += await self._end_overdue(
                    session,
                    Run.state.in_([RunStatus.SUBMITTED.value, RunStatus.RUNNING.value])
                    & (Run.submitted_at < now - timedelta(seconds=max_duration)),
                    RunStatus.FAILED,
                    cause,
                    now=now,
                    stop_pipeline=True,
                )
            if approval_timeout > 0:
                cause = (
                    f"not approved within {_duration(approval_timeout)} "
                    "(RETRIGGER_APPROVAL_TIMEOUT): rejected by the system"
                )
                ended += await self._end_overdue(
                    session,
                    (Run.state == RunStatus.AWAITING_APPROVAL.value)
                    & (Run.created_at < now - timedelta(seconds=approval_timeout)),
                    RunStatus.REJECTED,
                    cause,
                    now=now,
                    stop_pipeline=False,
                )
        return ended

    async def _end_overdue(
        self,
        session: AsyncSession,
        overdue: ColumnElement[bool],
        target: RunStatus,
        cause: str,
        *,
        now: datetime,
        stop_pipeline: bool,
    ) -> int:
        """Move up to SWEEP_LIMIT overdue runs to ``target`` as ``system``; how many moved."""
        query = select(Run).where(overdue).order_by(Run.id).limit(SWEEP_LIMIT)
        ended = 0
        for run in (await session.execute(query)).scalars().all():
            values: dict[str, object] = {}
            if stop_pipeline:
                values = {
                    "last_error": cause,
                    "cancel_pending": run.external_id is not None,
                    "cancel_attempts": 0,
                    "cancel_next_at": None,
                }
            with run_service.log_scope(run):
                if await run_service.transition(
                    session, run, target, cause=cause, actor="system", now=now, values=values
                ):
                    ended += 1
                    log.warning("run %s %s: %s", run.id, target.value, cause)
        return ended

    # --- cancellations ----------------------------------------------------------------------

    async def claim_cancellations(self) -> list[int]:
        """Due cancellations, each held for one lease so no other poller sends it meanwhile."""
        now = self.now()
        due = (
            Run.cancel_pending.is_(True),
            or_(Run.cancel_next_at.is_(None), Run.cancel_next_at <= now),
        )
        hold = now + timedelta(seconds=self.settings.dispatch_lease_seconds)
        async with self.db.session_scope() as session:
            return await claim_rows(session, self.settings, due, {"cancel_next_at": hold}, 100)

    async def send_cancellations(self) -> int:
        """Ask orchestrators to stop runs cancelled after they launched; returns how many
        cancellations were attempted."""
        claimed = await self.claim_cancellations()
        for run_id in claimed:
            with log_context(run_id=run_id):
                try:
                    await self.cancel(run_id)
                except Exception:
                    log.exception("cancelling run %s failed unexpectedly", run_id)
        return len(claimed)

    async def cancel(self, run_id: int) -> None:
        """Send one claimed cancellation and record how it went."""
        found = await self._remote(run_id)
        if found is None:  # nothing was launched: nothing to stop
            await self._cancel_done(run_id, None)
            return
        run, config = found
        with run_service.log_scope(run):
            if isinstance(config, Exception):
                await self._cancel_done(run_id, config)
                return
            try:  # a plugin uninstalled since counts as a failed attempt
                async with self._adapter(run, config) as (adapter, ref):
                    await adapter.cancel(ref)
            except Exception as exc:
                await self._cancel_done(run_id, exc)
                return
            await self._cancel_done(run_id, None)

    async def _cancel_done(self, run_id: int, exc: Exception | None) -> None:
        """Clear a sent cancellation, or schedule its retry, or give it up with the error."""
        now = self.now()
        max_attempts = self.settings.dispatch_max_attempts
        async with self.db.session_scope() as session:
            run = await session.get(Run, run_id, populate_existing=True)
            if run is None or not run.cancel_pending:
                return
            attempts = run.cancel_attempts + 1
            run.cancel_attempts = attempts
            if exc is None:
                run.cancel_pending = False
                run.cancel_next_at = None
                if run.external_id is not None:
                    log.info("run %s: cancel sent to %s", run_id, run.kind)
                return
            message = _message(exc, call_budget(self.settings))
            refused = isinstance(exc, OrchestratorRejected)
            if refused or attempts >= max_attempts:
                why = "refused" if refused else f"failed {attempts} times"
                note = f"cancel on {run.kind} given up, the orchestrator {why}: {message}"
                run.cancel_pending = False
                run.cancel_next_at = None
                run.last_error = note
                run.status_detail = note
                log.warning("run %s: %s", run_id, note)
                return
            retry_after = exc.retry_after if isinstance(exc, OrchestratorUnavailable) else None
            delay = backoff_delay(self.settings, attempts, retry_after, self.rng)
            run.cancel_next_at = now + delay
            run.status_detail = (
                f"cancel on {run.kind} failed ({attempts} of {max_attempts} attempts), "
                f"next in {delay.total_seconds():.0f}s: {message}"
            )
            log.warning(
                "run %s: cancel on %s failed (%s of %s), retry in %.1fs: %s",
                run_id,
                run.kind,
                attempts,
                max_attempts,
                delay.total_seconds(),
                message,
            )
