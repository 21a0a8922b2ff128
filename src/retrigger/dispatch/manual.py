"""Manual retraining: a person asks, a decision with reason ``manual`` records it, the guards
apply as to any fired decision (an org admin may force past all of them but the one-active-run
rule), and a run is created in the same transaction."""

from __future__ import annotations

import logging
import time

from sqlalchemy.ext.asyncio import AsyncSession

from retrigger import metrics
from retrigger.auth.scopes import Principal
from retrigger.db.types import utcnow
from retrigger.decisions import repository as decision_repo
from retrigger.decisions import service as decision_service
from retrigger.decisions.guards import GuardContext, Verdict, apply_guards
from retrigger.decisions.models import Decision
from retrigger.decisions.repository import DecisionRepository
from retrigger.decisions.schemas import DecisionRead, Outcome, Trigger
from retrigger.decisions.state import StateView
from retrigger.dispatch import runs as run_service
from retrigger.dispatch.errors import ActiveRunExists, NoTarget
from retrigger.errors import Forbidden
from retrigger.products import service as product_service
from retrigger.signals import readers

log = logging.getLogger("retrigger.dispatch")


async def retrain(
    session: AsyncSession,
    *,
    principal: Principal,
    product_name: str,
    reason: str,
    force: bool,
) -> DecisionRead:
    """Record a manual retrain decision and, unless a guard suppresses it, its run."""
    started = time.perf_counter()
    if force and not principal.is_org_admin:
        raise Forbidden("forcing a retrain past the guards needs an org admin key")
    product = await product_service.get_visible_or_raise(
        session, principal=principal, name=product_name
    )
    policy = await decision_service.resolve_policy(session, product=product, candidate=None)
    connection, note = await run_service.launch_target(session, policy.body.target)
    if connection is None or policy.body.target is None:
        raise NoTarget(
            f"cannot retrain '{product_name}': {note}",
            errors=[{"loc": ["path", "product"], "msg": note, "type": "value_error"}],
        )
    now = utcnow()
    state = await decision_repo.lock_state(session, product.id)
    view = StateView.from_row(state)
    active = await run_service.active_run(session, product.id)
    if active is not None and force:
        raise ActiveRunExists(
            f"{run_service.describe(active)} is active; cancel it before forcing another"
        )
    if force:
        verdicts, blocking = [Verdict("force", True, f"forced by {principal.actor}")], None
    else:
        labelled = await readers.count_labelled(
            session, product_id=product.id, since=view.last_retrain_at, until=now
        )
        ctx = GuardContext(
            now=now,
            settings=policy.body.guards,
            fired_at=view.fired_at,
            new_labelled_samples=labelled,
            active_run=run_service.describe(active) if active is not None else None,
        )
        verdicts, blocking = apply_guards(ctx)
    outcome = Outcome.fired if blocking is None else Outcome.suppressed
    text = f"manual retrain requested by {principal.actor}: {reason}"
    if blocking is not None:
        text = f"{text}; suppressed by {blocking.guard}: {blocking.reason}"
    approval = outcome is Outcome.fired and policy.body.guards.require_approval and not force
    decision = Decision(
        product_id=product.id,
        evaluated_at=now,
        trigger=Trigger.manual.value,
        outcome=outcome.value,
        reason=text,
        suppressed_by=blocking.guard if blocking else None,
        requires_approval=approval,
        policy_version=policy.version,
        policy_fingerprint=policy.fingerprint,
        reference_version=None,
        fired_rules=[],
        fired_types=",manual,",
        findings=[],
        guards=[v.as_dict() for v in verdicts],
        inputs={"windows": {}, "forced": force},
        created_by=principal.actor,
        created_at=now,
    )
    if outcome is Outcome.fired:
        view.advance([], fired=True, now=now, detector_configs={})
        view.write_to(state)
    budget = decision_service.budget_remaining(policy.body.guards, view.fired_at, now)
    decision.inputs = {**decision.inputs, "budget_remaining": budget}
    await DecisionRepository(session).add(decision)
    run_id = None
    if outcome is Outcome.fired:
        run = await run_service.create_for_decision(
            session,
            product=product,
            decision=decision,
            target=policy.body.target,
            connection=connection,
            awaiting_approval=approval,
            actor=principal.actor,
        )
        run_id = run.id
    metrics.observe_evaluation(
        product=product.name,
        outcome=outcome.value,
        trigger=Trigger.manual.value,
        seconds=time.perf_counter() - started,
        suppressed_by=decision.suppressed_by,
        fired_rule_types=[],
        findings=None,  # a manual retrain tests nothing: the drift gauges stay as they are
        budget_remaining=budget,
        decision_id=decision.id,
    )
    done = f"fired, run {run_id} created" if run_id is not None else "fired"
    if outcome is Outcome.suppressed:
        done = f"suppressed by {decision.suppressed_by}"
    forced = " (forced)" if force else ""
    log.info(
        "decision %s for %s: manual retrain%s by %s %s",
        decision.id,
        product.name,
        forced,
        principal.actor,
        done,
    )
    return decision_service.to_read(decision, product.name, run_id=run_id)
