"""Run callbacks: a pipeline reports its state, metrics and the model version it produced.

A callback is authenticated either by a Standard Webhooks signature made with
``RETRIGGER_CALLBACK_SECRET`` (what a pipeline without an API key sends) or by a ``write`` key.
Repeating a callback is harmless: a state already reached is a no-op, never a step back.
"""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.dispatch import runs as run_service
from retrigger.dispatch.errors import RunStateConflict
from retrigger.dispatch.lifecycle import RunStatus
from retrigger.dispatch.models import Run
from retrigger.dispatch.schemas import CallbackIn
from retrigger.errors import InvalidConfig

REPORTABLE = frozenset(
    {RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
)


async def apply(session: AsyncSession, *, run: Run, report: CallbackIn, actor: str) -> Run:
    """Follow what the pipeline reported; 409 if it contradicts a state already final."""
    target = report.state
    if target not in REPORTABLE:
        raise InvalidConfig(
            f"a callback reports running, succeeded, failed or cancelled, not {target.value}",
            errors=[{"loc": ["body", "state"], "msg": "not reportable", "type": "value_error"}],
        )
    current = RunStatus(run.state)
    if current == target or (current is RunStatus.SUCCEEDED and target is RunStatus.RUNNING):
        return run  # a repeated or late callback
    if current.terminal:
        raise RunStateConflict(f"run {run.id} already ended {current.value}")
    if current in (RunStatus.PENDING, RunStatus.AWAITING_APPROVAL):
        if current is RunStatus.AWAITING_APPROVAL:
            raise RunStateConflict(f"run {run.id} awaits approval; it was not launched")
        # the pipeline spoke before the dispatcher recorded its submission
        await run_service.transition(
            session, run, RunStatus.SUBMITTED, cause="callback arrived first", actor=actor
        )
    outputs = {**run.outputs, **report.outputs}
    if report.metrics:
        outputs["metrics"] = {**outputs.get("metrics", {}), **report.metrics}
    values: dict[str, object] = {"outputs": outputs}
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
