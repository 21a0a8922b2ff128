"""Backtests: replay a product's stored history through a candidate policy.

The replay walks from ``start`` to ``end`` in steps of ``cadence``; at each step every rule reads
the windows by event time (signals with event times up to the step, backfills included, against
today's reference), or, with ``as_known``, as they were known then (only signals received,
labels joined and alert states delivered by then; detectors fed the labels that joined since the
previous step; drift and staleness against the reference active at the step). M-of-N histories
carry over in memory, and the guards see the replay's own fires. Nothing is written:
the route runs it on a read-only session, so a long replay never holds SQLite's write lock.
The result compares the would-be retrains with the decisions actually stored for the period.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Self

from pydantic import AwareDatetime, Field, model_validator
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Principal
from retrigger.decisions.repository import DecisionRepository, get_state
from retrigger.decisions.schemas import Outcome
from retrigger.decisions.service import resolve_policy, run_step
from retrigger.decisions.state import StateView
from retrigger.errors import InvalidConfig
from retrigger.policies import service as policy_service
from retrigger.policies.durations import format_duration, parse_duration
from retrigger.policies.resolve import EffectivePolicy
from retrigger.products import service as product_service
from retrigger.references import service as reference_service
from retrigger.schemas import InputSchema, Schema

MAX_STEPS = 5000


class BacktestRequest(InputSchema):
    policy: dict[str, Any] | None = Field(
        None, description="Candidate product policy; omit to replay a stored version."
    )
    policy_version: int | None = Field(
        None, ge=1, description="Stored policy version to replay (default: the current one)."
    )
    start: AwareDatetime
    end: AwareDatetime
    cadence: Annotated[str, Field(max_length=20, examples=["1h", "1d"])] = "1d"
    as_known: bool = Field(
        False,
        description="Replay history as it was known at each step: only signals received, labels "
        "joined and alert states delivered by then, the reference active then and its training "
        "time. Default (false): everything stored counts by its event time, with today's "
        "reference and model training time, which is what backfilled history needs.",
    )

    @model_validator(mode="after")
    def _check(self) -> Self:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        if self.policy is not None and self.policy_version is not None:
            raise ValueError("give a candidate policy or a policy_version, not both")
        return self


class BacktestStep(Schema):
    at: datetime
    outcome: Outcome
    fired_rules: list[str]
    suppressed_by: str | None
    reason: str


class ActualDecisions(Schema):
    decisions: int
    fired: int
    fired_at: list[datetime]


class BacktestResult(Schema):
    policy_fingerprint: str
    start: datetime
    end: datetime
    cadence: str
    steps: list[BacktestStep]
    outcomes: dict[str, int] = Field(description="Number of steps per outcome.")
    retrains: int = Field(description="Fired decisions that passed the guards: retrains launched.")
    retrain_times: list[datetime]
    actual: ActualDecisions = Field(description="What was actually decided in the period.")


def _cadence(text: str) -> timedelta:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise InvalidConfig(
            f"invalid cadence: {exc}",
            errors=[{"loc": ["body", "cadence"], "msg": str(exc), "type": "value_error"}],
        ) from None


def _note_model_trained(view: StateView, trained_at: datetime | None) -> None:
    """What activating that reference did to the live state (``note_model_trained``)."""
    view.model_trained_at = trained_at
    if trained_at is not None and (
        view.last_retrain_at is None or view.last_retrain_at < trained_at
    ):
        view.last_retrain_at = trained_at


async def run(
    session: AsyncSession, *, principal: Principal, product_name: str, request: BacktestRequest
) -> BacktestResult:
    """Replay the product's history through the policy; read-only."""
    product = await product_service.get_visible_or_raise(
        session, principal=principal, name=product_name
    )
    cadence = _cadence(request.cadence)
    steps_needed = int((request.end - request.start) / cadence)
    if steps_needed > MAX_STEPS:
        raise InvalidConfig(
            f"{steps_needed} steps: at most {MAX_STEPS} (widen the cadence or shorten the range)",
            errors=[{"loc": ["body", "cadence"], "msg": "too many steps", "type": "value_error"}],
        )
    if request.policy_version is not None:
        _, stored = await policy_service.get_policy_version(
            session, principal=principal, product_name=product_name, version=request.policy_version
        )
        body = EffectivePolicy.model_validate(stored.effective).policy
        fp = stored.fingerprint
    else:
        resolved = await resolve_policy(session, product=product, candidate=request.policy)
        body, fp = resolved.body, resolved.fingerprint

    # as known: the model's age at each step comes from the references activated by then; by
    # event time: today's training time. Replayed fires count as retrains on top of it
    references = (
        await reference_service.activation_history(session, product_id=product.id)
        if request.as_known
        else None
    )
    live = StateView.from_row(await get_state(session, product.id))
    view = StateView(model_trained_at=live.model_trained_at, last_retrain_at=live.model_trained_at)
    if references is not None:
        view = StateView()
    steps: list[BacktestStep] = []
    retrain_times: list[datetime] = []
    previous: datetime | None = None
    at = request.start
    while at <= request.end:
        if references is not None:
            _note_model_trained(view, reference_service.trained_at_as_of(references, at))
        step = await run_step(
            session,
            product=product,
            policy=body,
            view=view,
            now=at,
            replay_since=previous,
            replay=True,
            as_known=request.as_known,
        )
        result, outcome = step.result, step.outcome
        if outcome is Outcome.fired:
            retrain_times.append(at)
        view.advance(
            result.findings,
            fired=outcome is Outcome.fired,
            now=at,
            detector_configs=step.meta.detector_configs,
        )
        steps.append(
            BacktestStep(
                at=at,
                outcome=outcome,
                fired_rules=list(result.fired_rules),
                suppressed_by=step.suppressed_by,
                reason=step.reason,
            )
        )
        previous = at
        at = at + cadence

    actual = await DecisionRepository(session).between(product.id, request.start, request.end)
    outcomes: dict[str, int] = {}
    for replayed in steps:
        outcomes[replayed.outcome.value] = outcomes.get(replayed.outcome.value, 0) + 1
    return BacktestResult(
        policy_fingerprint=fp,
        start=request.start,
        end=request.end,
        cadence=format_duration(cadence),
        steps=steps,
        outcomes=outcomes,
        retrains=len(retrain_times),
        retrain_times=retrain_times,
        actual=ActualDecisions(
            decisions=len(actual),
            fired=sum(1 for d in actual if d.outcome == Outcome.fired.value),
            fired_at=[d.evaluated_at for d in actual if d.outcome == Outcome.fired.value],
        ),
    )
