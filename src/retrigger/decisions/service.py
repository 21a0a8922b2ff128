"""Evaluating a product: resolve its policy, read each rule's window, run the pure evaluation off
the event loop, apply the guards, and store an explained decision with the updated state.

A stored evaluation locks the product's state row (``FOR UPDATE``) for its transaction, so
concept-drift detectors advance exactly once per outcome and M-of-N histories stay consistent
with several replicas. Dry runs read the same state but write nothing.

A scheduled evaluation that comes to the same as the product's last decision and reads nothing
new is folded into that decision (``repeat_count``, ``last_repeated_at``) instead of stored, so
an unchanged product is not one decision a minute. A performance rule's M-of-N history gets one
entry per window of data (:func:`window_identity`): re-reading a window re-decides its entry.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import anyio
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger import logs
from retrigger.auth.scopes import SYSTEM, Principal
from retrigger.db.types import utcnow
from retrigger.decisions import repository as decision_repo
from retrigger.decisions.errors import DecisionNotFound, NoPolicy
from retrigger.decisions.guards import GuardContext, apply_guards
from retrigger.decisions.inputs import InputsMeta, build_inputs, mark_processed
from retrigger.decisions.models import Decision, ProductState
from retrigger.decisions.repeats import repeats, window_identity
from retrigger.decisions.repository import DecisionRepository
from retrigger.decisions.schemas import DecisionRead, DecisionSummary, Outcome, Trigger
from retrigger.decisions.state import StateView
from retrigger.dispatch import runs as run_service
from retrigger.dispatch.models import Run
from retrigger.errors import InvalidConfig
from retrigger.evaluation import PerformanceInput, PolicyEvaluation, evaluate_policy
from retrigger.policies import service as policy_service
from retrigger.policies.documents import fingerprint, validate_product_policy
from retrigger.policies.errors import PolicyNotFound
from retrigger.policies.guards import Guards
from retrigger.policies.resolve import EffectivePolicy, resolve
from retrigger.policies.schemas import PolicyBody, TemplatedPolicySpec
from retrigger.products import service as product_service
from retrigger.products.models import Product


@dataclass(frozen=True)
class ResolvedPolicy:
    body: PolicyBody
    version: int | None
    fingerprint: str


log = logging.getLogger("retrigger.decisions")


async def resolve_policy(
    session: AsyncSession, *, product: Product, candidate: Mapping[str, Any] | None
) -> ResolvedPolicy:
    """The stored effective policy, or a candidate validated and resolved like a save would."""
    if candidate is None:
        try:
            _, version = await policy_service.get_policy_version(
                session, principal=SYSTEM, product_name=product.name
            )
        except PolicyNotFound:
            raise NoPolicy(f"product '{product.name}' has no policy yet") from None
        effective = EffectivePolicy.model_validate(version.effective)
        return ResolvedPolicy(effective.policy, version.version, version.fingerprint)
    try:
        spec = validate_product_policy(candidate)
        template = None
        if isinstance(spec, TemplatedPolicySpec):
            stored = await policy_service.get_template_version(
                session, name=spec.template.name, version=spec.template.version
            )
            template = stored.spec
        effective = resolve(spec, template)
    except InvalidConfig as exc:
        errors = [{**e, "loc": ["body", "policy", *e.get("loc", [])]} for e in exc.errors]
        raise InvalidConfig(exc.message, errors=errors) from None
    return ResolvedPolicy(effective.policy, None, fingerprint(spec))


@dataclass(frozen=True)
class Step:
    """One evaluation at one time, guards applied; shared by live evaluations and backtests."""

    result: PolicyEvaluation
    outcome: Outcome
    reason: str
    suppressed_by: str | None
    verdicts: list[dict[str, Any]]
    meta: InputsMeta
    # performance rule id -> window identity; empty for replays, whose histories just append
    windows: dict[str, str] = field(default_factory=dict)


async def run_step(
    session: AsyncSession,
    *,
    product: Product,
    policy: PolicyBody,
    view: StateView,
    now: datetime,
    replay_since: datetime | None = None,
    replay: bool = False,
    as_known: bool = False,
    active_run: str | None = None,
) -> Step:
    """Read the windows, evaluate off the event loop, then let the guards speak."""
    inputs, meta = await build_inputs(
        session,
        product=product,
        policy=policy,
        state=view,
        now=now,
        replay_since=replay_since,
        replay=replay,
        as_known=as_known,
    )
    windows: dict[str, str] = {}
    if not replay:
        # live: a window already decided re-decides its own history entry, not one more
        for rule_id, data in list(inputs.items()):
            if isinstance(data, PerformanceInput):
                identity = window_identity(meta.windows.get(rule_id), data)
                windows[rule_id] = identity
                inputs[rule_id] = replace(data, history=view.history_before(rule_id, identity))
    result: PolicyEvaluation = await anyio.to_thread.run_sync(evaluate_policy, policy, inputs, now)
    outcome, reason = Outcome(result.outcome), result.reason
    if outcome is not Outcome.fired:
        return Step(result, outcome, reason, None, [], meta, windows)
    ctx = GuardContext(
        now=now,
        settings=policy.guards,
        fired_at=view.fired_at,
        new_labelled_samples=meta.new_labelled_samples,
        active_run=active_run,
    )
    verdicts, blocking = apply_guards(ctx)
    suppressed_by = None
    if blocking is not None:
        outcome, suppressed_by = Outcome.suppressed, blocking.guard
        reason = f"{reason}; suppressed by {blocking.guard}: {blocking.reason}"
    verdicts_json = [v.as_dict() for v in verdicts]
    return Step(result, outcome, reason, suppressed_by, verdicts_json, meta, windows)


async def evaluate(
    session: AsyncSession,
    *,
    product: Product,
    trigger: Trigger,
    actor: str,
    now: datetime | None = None,
    dry_run: bool = False,
    candidate: Mapping[str, Any] | None = None,
) -> DecisionRead:
    """Evaluate one product and, unless ``dry_run``, store the decision and the new state."""
    # log lines of the evaluation carry the product, and the decision id once it is stored
    with logs.log_context(product=product.name):
        return await _evaluate(
            session,
            product=product,
            trigger=trigger,
            actor=actor,
            now=now,
            dry_run=dry_run,
            candidate=candidate,
        )


def budget_remaining(guards: Guards, fired_at: list[datetime], now: datetime) -> int | None:
    """Retrains left in the budget period (as ``BudgetGuard`` counts them); None: no budget."""
    if guards.max_runs is None:
        return None
    since = now - guards.period
    return max(guards.max_runs - sum(1 for t in fired_at if since < t <= now), 0)


async def _evaluate(
    session: AsyncSession,
    *,
    product: Product,
    trigger: Trigger,
    actor: str,
    now: datetime | None,
    dry_run: bool,
    candidate: Mapping[str, Any] | None,
) -> DecisionRead:
    started = time.perf_counter()
    now = now or utcnow()
    policy = await resolve_policy(session, product=product, candidate=candidate)
    if dry_run:
        state = await decision_repo.get_state(session, product.id)
    else:
        state = await decision_repo.lock_state(session, product.id)
    view = StateView.from_row(state)
    active = await run_service.active_run(session, product.id)
    run_id: int | None = None
    step = await run_step(
        session,
        product=product,
        policy=policy.body,
        view=view,
        now=now,
        active_run=run_service.describe(active) if active is not None else None,
    )
    result, outcome, meta = step.result, step.outcome, step.meta
    reason = step.reason
    connection = None
    if outcome is Outcome.fired:
        connection, note = await run_service.launch_target(session, policy.body.target)
        if note is not None:
            reason = f"{reason}; {note}"
    findings = [f.as_dict() for f in result.findings]
    fired_types = sorted({f["type"] for f in findings if f["rule_id"] in result.fired_rules})
    decision = Decision(
        product_id=product.id,
        evaluated_at=now,
        trigger=trigger.value,
        outcome=outcome.value,
        reason=reason,
        suppressed_by=step.suppressed_by,
        requires_approval=outcome is Outcome.fired and policy.body.guards.require_approval,
        policy_version=policy.version,
        policy_fingerprint=policy.fingerprint,
        reference_version=meta.reference_version,
        fired_rules=list(result.fired_rules),
        fired_types="," + ",".join(fired_types) + "," if fired_types else "",
        findings=findings,
        guards=step.verdicts,
        inputs=meta.as_dict(),
        created_by=actor,
        created_at=utcnow(),
    )
    if dry_run:
        return to_read(decision, product.name, dry_run=True)
    assert state is not None
    repeated: Decision | None = None
    if trigger is Trigger.schedule and outcome is not Outcome.fired:
        # the budget a decision shows is part of what a repeat must repeat
        budget = budget_remaining(policy.body.guards, view.fired_at, now)
        decision.inputs = {**decision.inputs, "budget_remaining": budget}
        previous = await DecisionRepository(session).latest(product.id)
        if previous is not None and repeats(previous, decision, step=step, view=view):
            repeated = previous
    if repeated is not None:
        await _fold(session, previous=repeated, state=state, view=view, step=step, now=now)
        stored = repeated
    else:
        view.advance(
            result.findings,
            fired=outcome is Outcome.fired,
            now=now,
            detector_configs=meta.detector_configs,
            windows=step.windows,
        )
        view.write_to(state)
        # stored with the decision, so every process's state gauges can show it
        budget = budget_remaining(policy.body.guards, view.fired_at, now)
        decision.inputs = {**decision.inputs, "budget_remaining": budget}
        await mark_processed(session, meta)
        _clear_mark(state, now)
        await DecisionRepository(session).add(decision)
        logs.bind(decision_id=decision.id)
        if connection is not None and policy.body.target is not None:
            run = await run_service.create_for_decision(
                session,
                product=product,
                decision=decision,
                target=policy.body.target,
                connection=connection,
                awaiting_approval=decision.requires_approval,
                actor=actor,
            )
            run_id = run.id
        stored = decision
    from retrigger import metrics

    # a folded evaluation still counts as work done; the gauges show the stored decision's
    # findings, as every other process reads them
    metrics.observe_evaluation(
        product=product.name,
        outcome=outcome.value,
        trigger=trigger.value,
        seconds=time.perf_counter() - started,
        suppressed_by=step.suppressed_by,
        fired_rule_types=[f["type"] for f in findings if f["rule_id"] in result.fired_rules],
        findings=list(stored.findings),
        budget_remaining=budget,
        decision_id=stored.id,
    )
    if repeated is None:
        log.info(
            "decision %s for %s: %s%s (trigger %s, fired rules %s)%s",
            decision.id,
            product.name,
            outcome.value,
            f" by {step.suppressed_by}" if step.suppressed_by else "",
            trigger.value,
            ",".join(result.fired_rules) or "none",
            f", run {run_id} created" if run_id is not None else "",
        )
    return to_read(stored, product.name, run_id=run_id)


def _clear_mark(state: ProductState, now: datetime) -> None:
    if state.dirty_since is not None and state.dirty_since <= now:
        # this evaluation read the signals that marked the product; one committed since it
        # began (a later mark) keeps the product marked for the next evaluation
        state.dirty_since = None


async def _fold(
    session: AsyncSession,
    *,
    previous: Decision,
    state: ProductState,
    view: StateView,
    step: Step,
    now: datetime,
) -> None:
    """Count this evaluation as a repeat of ``previous``, and move the state on as it would."""
    view.repeat(step.result.findings, now=now)
    view.write_to(state)
    _clear_mark(state, now)
    await DecisionRepository(session).note_repeat(previous, at=now)
    logs.bind(decision_id=previous.id)
    log.debug(
        "decision %s repeated (%s times since %s)",
        previous.id,
        previous.repeat_count,
        previous.evaluated_at.isoformat(),
    )


async def note_model_trained(
    session: AsyncSession, *, product_id: int, trained_at: datetime
) -> None:
    """Record when the serving model was trained (staleness), e.g. when its reference activates."""
    state = await decision_repo.lock_state(session, product_id)
    state.model_trained_at = trained_at
    if state.last_retrain_at is None or state.last_retrain_at < trained_at:
        state.last_retrain_at = trained_at
    await session.flush()


async def evaluate_now(
    session: AsyncSession,
    *,
    principal: Principal,
    product_name: str,
    dry_run: bool,
    candidate: Mapping[str, Any] | None,
    at: datetime | None,
    trigger: Trigger,
) -> DecisionRead:
    """The ``:evaluate`` operation: stored unless a dry run; ``at`` only for dry runs."""
    product = await product_service.get_visible_or_raise(
        session, principal=principal, name=product_name
    )
    if at is not None and not dry_run:
        raise InvalidConfig(
            "evaluating as of another time is only possible as a dry run",
            errors=[{"loc": ["body", "at"], "msg": "needs dry_run", "type": "value_error"}],
        )
    return await evaluate(
        session,
        product=product,
        trigger=trigger,
        actor=principal.actor,
        now=at,
        dry_run=dry_run,
        candidate=candidate,
    )


def to_summary(decision: Decision, product_name: str) -> DecisionSummary:
    return DecisionSummary(
        id=decision.id,
        product=product_name,
        evaluated_at=decision.evaluated_at,
        trigger=decision.trigger,
        outcome=Outcome(decision.outcome),
        reason=decision.reason,
        suppressed_by=decision.suppressed_by,
        requires_approval=decision.requires_approval,
        policy_version=decision.policy_version,
        reference_version=decision.reference_version,
        fired_rules=list(decision.fired_rules),
        repeat_count=decision.repeat_count or 0,
        last_repeated_at=decision.last_repeated_at,
    )


def to_read(
    decision: Decision, product_name: str, *, dry_run: bool = False, run_id: int | None = None
) -> DecisionRead:
    return DecisionRead(
        **to_summary(decision, product_name).model_dump(),
        policy_fingerprint=decision.policy_fingerprint,
        findings=list(decision.findings),
        guards=list(decision.guards),
        inputs=dict(decision.inputs),
        created_by=decision.created_by,
        dry_run=dry_run,
        run_id=run_id,
    )


async def list_(
    session: AsyncSession,
    *,
    principal: Principal,
    product_name: str | None,
    outcome: str | None,
    rule_type: str | None,
    since: datetime | None,
    until: datetime | None,
    after_id: int | None,
    limit: int,
) -> tuple[list[DecisionSummary], int | None]:
    product_id = None
    if product_name is not None:
        product = await product_service.get_visible_or_raise(
            session, principal=principal, name=product_name
        )
        product_id = product.id
    rows, next_id = await DecisionRepository(session).search(
        team_id=None if principal.is_org_wide else principal.team_id,
        product_id=product_id,
        outcome=outcome,
        rule_type=rule_type,
        since=since,
        until=until,
        after_id=after_id,
        limit=limit,
    )
    names = await product_service.names_by_id(session, {r.product_id for r in rows})
    return [to_summary(r, names[r.product_id]) for r in rows], next_id


async def get_visible_or_raise(
    session: AsyncSession, *, principal: Principal, decision_id: int
) -> DecisionRead:
    decision = await DecisionRepository(session).get_by_id(decision_id)
    if decision is not None:
        names = await product_service.names_by_id(session, {decision.product_id}, principal)
        if decision.product_id in names:
            run_id = await session.scalar(select(Run.id).where(Run.decision_id == decision.id))
            return to_read(decision, names[decision.product_id], run_id=run_id)
    raise DecisionNotFound(f"decision {decision_id} not found")
