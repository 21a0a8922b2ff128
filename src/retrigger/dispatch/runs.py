"""Runs: created with their fired decision (the outbox), moved forward only, acted on by people.

Every state change goes through :func:`transition`, a compare-and-set on the current state that
also appends a ``run_transitions`` row, so concurrent workers and API calls cannot move a run
backwards or twice.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger import metrics
from retrigger.audit import service as audit_service
from retrigger.auth.scopes import Principal
from retrigger.db.session import settings_of
from retrigger.db.types import utcnow
from retrigger.decisions.models import Decision
from retrigger.dispatch import connections, wakeup
from retrigger.dispatch.errors import RunNotFound, RunStateConflict
from retrigger.dispatch.lifecycle import ACTIVE, RunStatus, can_move
from retrigger.dispatch.models import Connection, Run, RunAttempt, RunTransition
from retrigger.dispatch.schemas import (
    AttemptRead,
    RunRead,
    RunSummary,
    TransitionRead,
)
from retrigger.logs import log_context
from retrigger.policies.target import Target, render_parameters
from retrigger.products import service as product_service
from retrigger.products.models import Product
from retrigger.references.repository import ReferenceRepository

log = logging.getLogger("retrigger.dispatch")


def idempotency_key(prefix: str, run_id: int) -> str:
    """The key every submission of a run carries, stored on the run when it is created.

    The random suffix keeps keys unique beyond this database: run ids restart at 1 after a reset,
    a restore or in a second installation, and a bare ``retrigger-run-1`` would then be taken by
    the orchestrator as "already launched" and adopt a months-old pipeline run.
    """
    return f"{prefix}-run-{run_id}-{secrets.token_hex(3)}"


def log_scope(run: Run) -> AbstractContextManager[None]:
    """``log_context`` of a run: its id, its decision's id and its product's name."""
    product = str(run.context.get("product") or "") or None
    return log_context(run_id=run.id, decision_id=run.decision_id, product=product)


async def active_run(session: AsyncSession, product_id: int) -> Run | None:
    """The product's active run, if any (the database allows at most one)."""
    result = await session.execute(
        select(Run).where(Run.product_id == product_id, Run.state.in_([s.value for s in ACTIVE]))
    )
    return result.scalar_one_or_none()


def _window(inputs: Mapping[str, Any]) -> tuple[str | None, str | None]:
    starts, ends = [], []
    for window in (inputs.get("windows") or {}).values():
        if not isinstance(window, Mapping):
            continue
        start = window.get("since") or window.get("first_event_time")
        end = window.get("until") or window.get("last_event_time")
        if isinstance(start, str):
            starts.append(start)
        if isinstance(end, str):
            ends.append(end)
    return (min(starts) if starts else None, max(ends) if ends else None)


async def create_for_decision(
    session: AsyncSession,
    *,
    product: Product,
    decision: Decision,
    target: Target,
    connection: Connection,
    awaiting_approval: bool,
    actor: str,
) -> Run:
    """The outbox row of a fired decision, in the decision's transaction."""
    now = utcnow()
    reference = await ReferenceRepository(session).active(product.id)
    window_start, window_end = _window(decision.inputs)
    reasons = [decision.reason]
    state = RunStatus.AWAITING_APPROVAL if awaiting_approval else RunStatus.PENDING
    run = Run(
        product_id=product.id,
        decision_id=decision.id,
        state=state.value,
        connection_id=connection.id,
        kind=connection.kind,
        pipeline=target.pipeline,
        idempotency_key=f"unassigned-{decision.id}",
        parameters={},
        context={},
        external_data={},
        attempts=0,
        cancel_pending=False,
        outputs={},
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    session.add(run)
    await session.flush()
    wakeup.after_commit(session)  # this process's dispatcher takes it at once
    run.idempotency_key = idempotency_key(settings_of(session).run_key_prefix, run.id)
    context: dict[str, Any] = {
        "product": product.name,
        "decision_id": decision.id,
        "run_id": run.id,
        # the pipeline derives its callback signing key from it (docs/runs.md, callbacks)
        "idempotency_key": run.idempotency_key,
        "reasons": reasons,
        "fired_rules": list(decision.fired_rules),
        "window_start": window_start,
        "window_end": window_end,
        "reference_version": reference.version if reference else decision.reference_version,
        "model_version": reference.model_version if reference else None,
        "policy_version": decision.policy_version,
    }
    values = {
        k: "" if v is None else ("; ".join(v) if isinstance(v, list) else str(v))
        for k, v in context.items()
    }
    run.context = context
    run.parameters = render_parameters(target.parameters, values)
    session.add(
        RunTransition(
            run_id=run.id,
            from_state=None,
            to_state=state.value,
            at=now,
            cause=f"decision {decision.id} fired: {decision.reason}"[:2000],
            actor=actor,
        )
    )
    await session.flush()
    metrics.observe_run_transition(run.kind, state.value)
    with log_context(run_id=run.id, decision_id=decision.id, product=product.name):
        log.info(
            "run %s created for decision %s (%s, by %s) on connection %s (%s)",
            run.id,
            decision.id,
            state.value,
            actor,
            connection.name,
            run.kind,
            extra={"state": state.value, "actor": actor},
        )
    return run


async def transition(
    session: AsyncSession,
    run: Run,
    target: RunStatus,
    *,
    cause: str,
    actor: str,
    now: datetime | None = None,
    values: Mapping[str, Any] | None = None,
) -> bool:
    """Move ``run`` forward to ``target`` if it is still in the state we read; False otherwise.

    ``values`` are other columns to set in the same statement.
    """
    current = RunStatus(run.state)
    if current == target:
        return False
    if not can_move(current, target):
        return False
    now = now or utcnow()
    changes: dict[str, Any] = {"state": target.value, "updated_at": now, **(values or {})}
    if target.terminal:
        changes.setdefault("finished_at", now)
        changes.setdefault("lease_owner", None)
        changes.setdefault("lease_expires_at", None)
    if target is RunStatus.SUBMITTED:
        changes.setdefault("submitted_at", now)
    result = await session.execute(
        update(Run)
        .where(Run.id == run.id, Run.state == current.value)
        .values(**changes)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        return False
    for key, value in changes.items():
        setattr(run, key, value)
    session.add(
        RunTransition(
            run_id=run.id,
            from_state=current.value,
            to_state=target.value,
            at=now,
            cause=cause[:2000],
            actor=actor[:64],
        )
    )
    await session.flush()
    with log_scope(run):
        log.info(
            "run %s %s -> %s by %s: %s",
            run.id,
            current.value,
            target.value,
            actor,
            cause,
            extra={"from_state": current.value, "state": target.value, "actor": actor},
        )
    metrics.observe_run_transition(run.kind, target.value)
    if target.terminal and run.submitted_at is not None:
        metrics.observe_submit_to_terminal(
            run.kind, target.value, (now - run.submitted_at).total_seconds()
        )
    return True


# --- API operations ---------------------------------------------------------------------------


async def get_visible_or_raise(session: AsyncSession, *, principal: Principal, run_id: int) -> Run:
    """The run, or 404 alike for "does not exist" and "another team's product"."""
    run = await session.get(Run, run_id)
    if run is not None:
        names = await product_service.names_by_id(session, {run.product_id}, principal)
        if run.product_id in names:
            return run
    raise RunNotFound(f"run {run_id} not found")


async def act(
    session: AsyncSession,
    *,
    principal: Principal,
    run_id: int,
    action: str,
    reason: str,
) -> Run:
    """Approve, reject or cancel a run, audited with the reason."""
    run = await get_visible_or_raise(session, principal=principal, run_id=run_id)
    current = RunStatus(run.state)
    if action == "approve":
        target, allowed_from = RunStatus.PENDING, {RunStatus.AWAITING_APPROVAL}
    elif action == "reject":
        target, allowed_from = RunStatus.REJECTED, {RunStatus.AWAITING_APPROVAL}
    else:
        target, allowed_from = RunStatus.CANCELLED, set(ACTIVE)
    if current not in allowed_from or not await transition(
        session,
        run,
        target,
        cause=f"{action}d by {principal.actor}: {reason}",
        actor=principal.actor,
        values={"cancel_pending": True}
        if target is RunStatus.CANCELLED and run.external_id
        else None,
    ):
        raise RunStateConflict(f"run {run_id} is {run.state}; it cannot be {action}d")
    product = await session.get(Product, run.product_id)
    await audit_service.record(
        session,
        principal=principal,
        action=action,
        entity_type="run",
        entity_name=str(run.id),
        team_id=product.team_id if product else None,
        diff={"state": {"old": current.value, "new": target.value}},
        reason=reason,
    )
    return run


async def list_(
    session: AsyncSession,
    *,
    principal: Principal,
    product_name: str | None,
    state: RunStatus | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[RunSummary], int | None]:
    """Runs visible to the key, newest first."""
    query = select(Run, Connection.name).join(Connection, Connection.id == Run.connection_id)
    if product_name is not None:
        product = await product_service.get_visible_or_raise(
            session, principal=principal, name=product_name
        )
        query = query.where(Run.product_id == product.id)
    elif not principal.is_org_wide:
        query = query.join(Product, Product.id == Run.product_id).where(
            Product.team_id == principal.team_id
        )
    if state is not None:
        query = query.where(Run.state == state.value)
    if after_id is not None:
        query = query.where(Run.id < after_id)
    rows = (await session.execute(query.order_by(Run.id.desc()).limit(limit + 1))).all()
    page = rows[:limit]
    names = await product_service.names_by_id(session, {r.product_id for r, _ in page})
    items = [_summary(run, names[run.product_id], conn) for run, conn in page]
    next_id = page[-1][0].id if len(rows) > limit else None
    return items, next_id


def _summary(run: Run, product: str, connection: str) -> RunSummary:
    return RunSummary(
        id=run.id,
        product=product,
        decision_id=run.decision_id,
        state=RunStatus(run.state),
        connection=connection,
        kind=run.kind,
        pipeline=run.pipeline,
        idempotency_key=run.idempotency_key,
        external_id=run.external_id,
        external_url=run.external_url,
        attempts=run.attempts,
        last_error=run.last_error,
        model_version=run.model_version,
        created_at=run.created_at,
        submitted_at=run.submitted_at,
        finished_at=run.finished_at,
    )


async def to_read(session: AsyncSession, run: Run) -> RunRead:
    """A run with its attempts and transitions."""
    product = await session.get(Product, run.product_id)
    connection = await session.get(Connection, run.connection_id)
    attempts: Sequence[RunAttempt] = (
        (
            await session.execute(
                select(RunAttempt).where(RunAttempt.run_id == run.id).order_by(RunAttempt.number)
            )
        )
        .scalars()
        .all()
    )
    transitions: Sequence[RunTransition] = (
        (
            await session.execute(
                select(RunTransition)
                .where(RunTransition.run_id == run.id)
                .order_by(RunTransition.id)
            )
        )
        .scalars()
        .all()
    )
    summary = _summary(
        run, product.name if product else "?", connection.name if connection else "?"
    )
    return RunRead(
        **summary.model_dump(),
        parameters=dict(run.parameters),
        context=dict(run.context),
        status_detail=run.status_detail,
        outputs=dict(run.outputs),
        next_attempt_at=run.next_attempt_at,
        created_by=run.created_by,
        attempts_log=[AttemptRead.model_validate(a) for a in attempts],
        transitions=[TransitionRead.model_validate(t) for t in transitions],
    )


async def counts_by_state(session: AsyncSession) -> tuple[dict[str, int], float]:
    """Runs per state, and the age in seconds of the oldest active run (0 when none)."""
    rows = (await session.execute(select(Run.state, func.count()).group_by(Run.state))).all()
    oldest = await session.scalar(
        select(func.min(Run.created_at)).where(Run.state.in_([s.value for s in ACTIVE]))
    )
    age = (utcnow() - oldest).total_seconds() if oldest is not None else 0.0
    return {state: int(n) for state, n in rows}, max(0.0, age)


async def connection_config(session: AsyncSession, run: Run) -> Any:
    """The adapter view of the run's connection (secret resolved in this process)."""
    row = await session.get(Connection, run.connection_id)
    if row is None:  # RESTRICT keeps it; a vanished row is a bug worth a loud error
        raise RuntimeError(f"connection {run.connection_id} of run {run.id} is missing")
    return await connections.launch_config(session, row, run)


async def launch_target(
    session: AsyncSession, target: Target | None
) -> tuple[Connection | None, str | None]:
    """The connection a fired decision launches on, or a note saying why nothing launches."""
    if target is None:
        return None, "nothing launched: the policy has no target"
    connection = await connections.get_by_name(session, target.connection)
    if connection is None:
        return None, f"nothing launched: connection '{target.connection}' does not exist"
    return connection, None


def describe(run: Run) -> str:
    """How guards name an active run."""
    return f"run {run.id} ({run.state})"
