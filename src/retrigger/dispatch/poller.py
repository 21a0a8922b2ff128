"""The status poller: follows submitted runs on their orchestrator until they end.

Each pass claims due runs by moving their ``next_poll_at`` forward in a short transaction (so
pollers in several processes do not poll the same run twice), asks the orchestrators outside any
transaction, and records what changed. It also carries out cancellations requested through the
API for runs already launched.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update

from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.db.types import utcnow
from retrigger.dispatch import runs as run_service
from retrigger.dispatch.dispatcher import TransportFactory, claim_rows
from retrigger.dispatch.lifecycle import RunStatus
from retrigger.dispatch.models import Run
from retrigger.dispatch.orchestrators import get_orchestrator
from retrigger.dispatch.orchestrators.base import (
    ConnectionConfig,
    RemoteStatus,
    RunRef,
    RunState,
    make_client,
)
from retrigger.logs import log_context

log = logging.getLogger("retrigger.dispatch")

_FOLLOW = {
    RunState.RUNNING: RunStatus.RUNNING,
    RunState.SUCCEEDED: RunStatus.SUCCEEDED,
    RunState.FAILED: RunStatus.FAILED,
    RunState.CANCELLED: RunStatus.CANCELLED,
}


class StatusPoller:
    """Polls non-terminal runs (configurable interval) and sends requested cancellations."""

    def __init__(
        self,
        db: Database,
        settings: Settings,
        *,
        now: Callable[[], datetime] = utcnow,
        transport_factory: TransportFactory | None = None,
    ) -> None:
        self.db = db
        self.settings = settings
        self.now = now
        self.transport_factory = transport_factory

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
        """One pass over due runs and pending cancellations; returns runs polled."""
        claimed = await self.claim()
        for run_id in claimed:
            with log_context(run_id=run_id):
                try:
                    await self.poll(run_id)
                except Exception:
                    log.exception("polling run %s failed unexpectedly", run_id)
        await self.send_cancellations()
        return len(claimed)

    async def _remote(self, run_id: int) -> tuple[Run, ConnectionConfig] | None:
        async with self.db.session_scope() as session:
            run = await session.get(Run, run_id)
            if run is None or run.external_id is None:
                return None
            try:
                config = await run_service.connection_config(session, run)
            except Exception as exc:
                log.warning("run %s: connection unusable: %s", run_id, exc)
                return None
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
        ref = RunRef(run.external_id or "", run.external_url, dict(run.external_data))
        transport = self.transport_factory(config) if self.transport_factory else None
        try:
            async with make_client(adapter_cls, config, transport=transport) as http:
                status = await adapter_cls(config, http).get_status(ref)
        except Exception as exc:  # the next poll tries again
            log.warning("run %s: status poll failed: %s", run_id, exc)
            return
        await self.record(run_id, status, actor="poller")

    async def record(self, run_id: int, status: RemoteStatus, *, actor: str) -> None:
        """Follow a reported remote state: detail always, state only forward."""
        async with self.db.session_scope() as session:
            run = await session.get(Run, run_id, populate_existing=True)
            if run is None:
                return
            run.status_detail = (status.detail or "")[:2000] or run.status_detail
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

    async def send_cancellations(self) -> None:
        """Ask orchestrators to stop runs cancelled through the API after they launched."""
        async with self.db.session_scope() as session:
            ids = (
                (
                    await session.execute(
                        select(Run.id).where(Run.cancel_pending.is_(True)).order_by(Run.id)
                    )
                )
                .scalars()
                .all()
            )
        for run_id in ids:
            found = await self._remote(run_id)
            if found is None:
                continue
            run, config = found
            adapter_cls = get_orchestrator(run.kind)
            ref = RunRef(run.external_id or "", run.external_url, dict(run.external_data))
            transport = self.transport_factory(config) if self.transport_factory else None
            try:
                async with make_client(adapter_cls, config, transport=transport) as http:
                    await adapter_cls(config, http).cancel(ref)
            except Exception as exc:
                log.warning("run %s: cancel on %s failed, will retry: %s", run_id, run.kind, exc)
                continue
            async with self.db.session_scope() as session:
                await session.execute(
                    update(Run)
                    .where(Run.id == run_id)
                    .values(cancel_pending=False)
                    .execution_options(synchronize_session=False)
                )
