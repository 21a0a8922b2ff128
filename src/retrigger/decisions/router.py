"""Decision routes: list and explain decisions, evaluate a product now, backtest a policy.

Backtests and dry runs only read: they run on a read-only session, so a long replay never holds
SQLite's write lock (ingestion keeps answering meanwhile).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from sqlalchemy.exc import OperationalError

from retrigger import metrics
from retrigger.api.deps import ReadPrincipal, SessionDep, WritePrincipal
from retrigger.api.problems import responses
from retrigger.db.session import Database
from retrigger.decisions import backtest as backtest_service
from retrigger.decisions import service as decision_service
from retrigger.decisions.backtest import BacktestRequest, BacktestResult
from retrigger.decisions.schemas import (
    DecisionRead,
    DecisionSummary,
    EvaluateRequest,
    Outcome,
    Trigger,
)
from retrigger.errors import RetriggerError
from retrigger.schemas import Page, Slug, Timestamp, decode_cursor, encode_cursor

router = APIRouter(prefix="/decisions", tags=["decisions"])
product_router = APIRouter(prefix="/products", tags=["decisions"])


@router.get("", response_model=Page[DecisionSummary], responses=responses(401, 403, 404, 422))
async def list_decisions(
    session: SessionDep,
    principal: ReadPrincipal,
    product: Annotated[str | None, Query(max_length=63)] = None,
    outcome: Outcome | None = None,
    rule_type: Annotated[
        str | None,
        Query(pattern=r"^[a-z_]{1,32}$", description="Only decisions fired by this rule type."),
    ] = None,
    since: Annotated[
        Timestamp | None, Query(description="Evaluated at or after (RFC 3339).")
    ] = None,
    until: Annotated[
        Timestamp | None, Query(description="Evaluated at or before (RFC 3339).")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[DecisionSummary]:
    """Decisions visible to the key, newest first, with filters."""
    rows, next_id = await decision_service.list_(
        session,
        principal=principal,
        product_name=product,
        outcome=outcome.value if outcome else None,
        rule_type=rule_type,
        since=since,
        until=until,
        after_id=decode_cursor(cursor),
        limit=limit,
    )
    return Page(items=rows, next_cursor=encode_cursor(next_id))


@router.get("/{decision_id}", response_model=DecisionRead, responses=responses(401, 403, 404, 422))
async def get_decision(
    decision_id: Annotated[int, Path(ge=1, le=2**63 - 1)],
    session: SessionDep,
    principal: ReadPrincipal,
) -> DecisionRead:
    """One decision with its full explanation: findings per rule, guard verdicts, inputs."""
    return await decision_service.get_visible_or_raise(
        session, principal=principal, decision_id=decision_id
    )


@product_router.post(
    "/{product}:evaluate",
    response_model=DecisionRead,
    responses=responses(400, 401, 403, 404, 409, 413, 415, 422),
)
async def evaluate_product(
    product: Slug,
    body: EvaluateRequest,
    request: Request,
    session: SessionDep,
    principal: WritePrincipal,
) -> DecisionRead:
    """Evaluate the product's policy now and record the decision (or a dry run, optionally with a
    candidate policy)."""
    dry_run = body.dry_run or body.policy is not None
    try:
        if not dry_run:
            return await decision_service.evaluate_now(
                session,
                principal=principal,
                product_name=product,
                dry_run=False,
                candidate=None,
                at=body.at,
                trigger=Trigger.api,
            )
        db: Database = request.app.state.db
        async with db.read_scope_after(session) as read:
            return await decision_service.evaluate_now(
                read,
                principal=principal,
                product_name=product,
                dry_run=True,
                candidate=body.policy,
                at=body.at,
                trigger=Trigger.api,
            )
    except (RetriggerError, OperationalError):
        raise  # answered as problem+json (4xx, or 503 for a busy database)
    except Exception:
        metrics.EVALUATION_ERRORS.labels(Trigger.api.value).inc()
        raise


@product_router.post(
    "/{product}/backtest",
    response_model=BacktestResult,
    responses=responses(400, 401, 403, 404, 409, 413, 415, 422),
)
async def backtest_product(
    product: Slug,
    body: BacktestRequest,
    request: Request,
    session: SessionDep,
    principal: ReadPrincipal,
) -> BacktestResult:
    """Replay stored history through a candidate policy (or a stored version): the would-be
    decision timeline, the retrains it would have launched, and the decisions actually taken."""
    db: Database = request.app.state.db
    async with db.read_scope_after(session) as read:
        return await backtest_service.run(
            read, principal=principal, product_name=product, request=body
        )
