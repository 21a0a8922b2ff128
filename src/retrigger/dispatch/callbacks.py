"""Run callbacks: a pipeline reports its state, metrics and the model version it produced.

A callback is authenticated either by a Standard Webhooks signature made with its run's own
callback key, ``HMAC-SHA256(RETRIGGER_CALLBACK_SECRET, run's idempotency key)`` (what a pipeline
without an API key sends; a signature made for one run fails on every other), or by a ``write``
key that may see the run's product. Repeating a callback is harmless: a state already reached is
never a step back; a progress report in the same state adds its metrics, outputs and detail.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.db.types import utcnow
from retrigger.dispatch import runs as run_service
from retrigger.dispatch.errors import RunNotFound, RunStateConflict
from retrigger.dispatch.lifecycle import RunStatus
from retrigger.dispatch.models import Run
from retrigger.dispatch.orchestrators.webhook import run_secret, verify
from retrigger.dispatch.schemas import CallbackIn
from retrigger.errors import InvalidConfig, Unauthenticated

REPORTABLE = frozenset(
    {RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
)


async def signed_run(
    session: AsyncSession,
    *,
    run_id: int,
    callback_secret: SecretStr | None,
    headers: Mapping[str, str],
    body: bytes,
) -> Run:
    """The run a signed callback is about, once its signature checks out with that run's key;
    401 otherwise (a callback signed for another run included)."""
    if callback_secret is None:
        raise Unauthenticated("signed callbacks need RETRIGGER_CALLBACK_SECRET on the server")
    run = await session.get(Run, run_id)
    if run is None:
        raise RunNotFound(f"run {run_id} not found")
    verify(run_secret(callback_secret.get_secret_value(), run.idempotency_key), headers, body)
    return run


def _check(report: CallbackIn) -> None:
    if report.state not in REPORTABLE:
        raise InvalidConfig(
            f"a callback reports running, succeeded, failed or cancelled, not {report.state.value}",
            errors=[{"loc": ["body", "state"], "msg": "not reportable", "type": "value_error"}],
        )
    if "metrics" in report.outputs:
        msg = "outputs.metrics is reserved: send numbers in the top-level metrics object"
        raise InvalidConfig(
            msg, errors=[{"loc": ["body", "outputs", "metrics"], "msg": msg, "type": "reserved"}]
        )


def _outputs(run: Run, report: CallbackIn) -> dict[str, Any]:
    """The run's outputs with the report's merged in; metrics merge name by name."""
    outputs = {**run.outputs, **report.outputs}
    if report.metrics:
        # a run stored before metrics were reserved may hold a non-object there: replace it
        previous = run.outputs.get("metrics")
        outputs["metrics"] = {**(previous if isinstance(previous, dict) else {}), **report.metrics}
    return outputs


async def apply(session: AsyncSession, *, run: Run, report: CallbackIn, actor: str) -> Run:
    """Follow what the pipeline reported; 409 if it contradicts a state already final."""
    _check(report)
    target = report.state
    current = RunStatus(run.state)
    if current is RunStatus.SUCCEEDED and target is RunStatus.RUNNING:
        return run  # a late progress report: its numbers are older than the final ones
    if current == target:
        await _same_state(session, run, report)
        return run
    if current.terminal:
        raise RunStateConflict(f"run {run.id} already ended {current.value}")
    if current in (RunStatus.PENDING, RunStatus.AWAITING_APPROVAL):
        if current is RunStatus.AWAITING_APPROVAL:
            raise RunStateConflict(f"run {run.id} awaits approval; it was not launched")
        # the pipeline spoke before the dispatcher recorded its submission
        await run_service.transition(
            session, run, RunStatus.SUBMITTED, cause="callback arrived first", actor=actor
        )
    values: dict[str, object] = {"outputs": _outputs(run, report)}
    if report.model_version:
        values["model_version"] = report.model_version
    if report.detail:
        values["status_detail"] = report.detail
    if target is RunStatus.FAILED:
        values["last_error"] = report.detail or "the pipeline reported a failure"
    cause = f"callback: {target.value}" + (f" ({report.detail})" if report.detail else "")
    if not await run_service.transition(
        session, run, target, cause=cause, actor=actor, values=values
    ):
        raise RunStateConflict(f"run {run.id} is {run.state}; cannot move to {target.value}")
    return run


async def _same_state(session: AsyncSession, run: Run, report: CallbackIn) -> None:
    """A report in the state the run is already in: a progress report (running) adds metrics,
    outputs and detail; a repeated final report may add what the first lacked, but a different
    model version than the one recorded is a 409."""
    terminal = RunStatus(run.state).terminal
    conflicting = (
        report.model_version is not None
        and run.model_version is not None
        and report.model_version != run.model_version
    )
    if terminal and conflicting:
        raise RunStateConflict(
            f"run {run.id} already ended {run.state} with model version {run.model_version}, "
            f"not {report.model_version}"
        )
    values: dict[str, Any] = {}
    outputs = _outputs(run, report)
    if outputs != run.outputs:
        values["outputs"] = outputs
    if report.model_version is not None and report.model_version != run.model_version:
        values["model_version"] = report.model_version
    if not terminal and report.detail and report.detail != run.status_detail:
        values["status_detail"] = report.detail
    if not values:
        return  # a plain repeat
    values["updated_at"] = utcnow()
    # compare-and-set on the state: a run that moved on meanwhile keeps what its move wrote
    result = await session.execute(
        update(Run)
        .where(Run.id == run.id, Run.state == run.state)
        .values(**values)
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise RunStateConflict(f"run {run.id} changed state while the callback was applied")
    for key, value in values.items():
        setattr(run, key, value)
