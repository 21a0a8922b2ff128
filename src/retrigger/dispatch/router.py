"""Connection and run routes: orchestrator endpoints, the run lifecycle, manual retrains."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from retrigger.api.deps import (
    AdminPrincipal,
    ReadPrincipal,
    SessionDep,
    SettingsDep,
    WritePrincipal,
    get_principal,
)
from retrigger.api.problems import responses
from retrigger.auth.scopes import Scope
from retrigger.decisions.schemas import DecisionRead
from retrigger.dispatch import callbacks, connections, manual
from retrigger.dispatch import runs as run_service
from retrigger.dispatch.lifecycle import RunStatus
from retrigger.dispatch.schemas import (
    CallbackIn,
    ConnectionCreate,
    ConnectionIn,
    ConnectionRead,
    RetrainIn,
    RunAction,
    RunRead,
    RunSummary,
)
from retrigger.errors import Forbidden
from retrigger.schemas import Page, Slug, decode_cursor, encode_cursor

connections_router = APIRouter(prefix="/connections", tags=["connections"])
runs_router = APIRouter(prefix="/runs", tags=["runs"])
retrain_router = APIRouter(prefix="/products", tags=["runs"])

RunId = Annotated[int, Path(ge=1, le=2**63 - 1)]


@connections_router.post(
    "",
    status_code=201,
    response_model=ConnectionRead,
    responses=responses(400, 401, 403, 409, 413, 415, 422),
)
async def create_connection(
    body: ConnectionCreate, session: SessionDep, settings: SettingsDep, principal: AdminPrincipal
) -> ConnectionRead:
    """Add an orchestrator endpoint (org admin keys); its secret is given as a reference, never
    in clear; ``teams`` limits which teams' products may launch on it."""
    row = await connections.create(session, principal=principal, conn=body, settings=settings)
    return await connections.to_read(session, row)


@connections_router.get("", response_model=Page[ConnectionRead], responses=responses(401, 403))
async def list_connections(session: SessionDep, principal: ReadPrincipal) -> Page[ConnectionRead]:
    """Connections by name: all of them for org-wide keys, those its team may use for a team
    key."""
    rows = await connections.list_(session, principal=principal)
    return Page(items=await connections.to_reads(session, rows), next_cursor=None)


@connections_router.get(
    "/{name}", response_model=ConnectionRead, responses=responses(401, 403, 404, 422)
)
async def get_connection(
    name: Slug, session: SessionDep, principal: ReadPrincipal
) -> ConnectionRead:
    """One connection (secret references only); 404 for a team key whose team may not use it."""
    row = await connections.get_visible_or_raise(session, principal=principal, name=name)
    return await connections.to_read(session, row)


@connections_router.put(
    "/{name}",
    response_model=ConnectionRead,
    responses=responses(400, 401, 403, 404, 413, 415, 422),
)
async def replace_connection(
    name: Slug,
    body: ConnectionIn,
    session: SessionDep,
    settings: SettingsDep,
    principal: AdminPrincipal,
) -> ConnectionRead:
    """Replace a connection's settings (org admin keys, audited); omitted ``teams`` are kept."""
    row = await connections.replace(
        session, principal=principal, name=name, conn=body, settings=settings
    )
    return await connections.to_read(session, row)


@connections_router.delete("/{name}", status_code=204, responses=responses(401, 403, 404, 409, 422))
async def delete_connection(name: Slug, session: SessionDep, principal: AdminPrincipal) -> Response:
    """Delete a connection that no run refers to."""
    await connections.delete_(session, principal=principal, name=name)
    return Response(status_code=204)


@runs_router.get("", response_model=Page[RunSummary], responses=responses(401, 403, 404, 422))
async def list_runs(
    session: SessionDep,
    principal: ReadPrincipal,
    product: Annotated[str | None, Query(max_length=63)] = None,
    state: RunStatus | None = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[RunSummary]:
    """Runs visible to the key, newest first."""
    items, next_id = await run_service.list_(
        session,
        principal=principal,
        product_name=product,
        state=state,
        after_id=decode_cursor(cursor),
        limit=limit,
    )
    return Page(items=items, next_cursor=encode_cursor(next_id))


@runs_router.get("/{run_id}", response_model=RunRead, responses=responses(401, 403, 404, 422))
async def get_run(run_id: RunId, session: SessionDep, principal: ReadPrincipal) -> RunRead:
    """One run with its parameters, submission attempts and state transitions."""
    run = await run_service.get_visible_or_raise(session, principal=principal, run_id=run_id)
    return await run_service.to_read(session, run)


async def _act(
    action: str, run_id: int, body: RunAction, session: SessionDep, principal: WritePrincipal
) -> RunRead:
    run = await run_service.act(
        session, principal=principal, run_id=run_id, action=action, reason=body.reason
    )
    return await run_service.to_read(session, run)


_ACTION_RESPONSES = responses(400, 401, 403, 404, 409, 413, 415, 422)


@runs_router.post("/{run_id}:approve", response_model=RunRead, responses=_ACTION_RESPONSES)
async def approve_run(
    run_id: RunId, body: RunAction, session: SessionDep, principal: WritePrincipal
) -> RunRead:
    """Approve a run awaiting approval: it becomes pending and is dispatched."""
    return await _act("approve", run_id, body, session, principal)


@runs_router.post("/{run_id}:reject", response_model=RunRead, responses=_ACTION_RESPONSES)
async def reject_run(
    run_id: RunId, body: RunAction, session: SessionDep, principal: WritePrincipal
) -> RunRead:
    """Reject a run awaiting approval; nothing is launched."""
    return await _act("reject", run_id, body, session, principal)


@runs_router.post("/{run_id}:cancel", response_model=RunRead, responses=_ACTION_RESPONSES)
async def cancel_run(
    run_id: RunId, body: RunAction, session: SessionDep, principal: WritePrincipal
) -> RunRead:
    """Cancel an active run; a launched pipeline is asked to stop."""
    return await _act("cancel", run_id, body, session, principal)


@runs_router.post(
    "/{run_id}:callback",
    response_model=RunRead,
    responses=responses(400, 401, 403, 404, 409, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": CallbackIn.model_json_schema()}},
        }
    },
)
async def run_callback(
    run_id: RunId, request: Request, session: SessionDep, settings: SettingsDep
) -> RunRead:
    """A pipeline reports its state: signed with its run's callback key (Standard Webhooks
    headers; the key is derived from ``RETRIGGER_CALLBACK_SECRET`` and the run's idempotency key)
    or sent with a ``write`` API key that may see the run's product."""
    body = await request.body()
    if "webhook-signature" in request.headers:
        run = await callbacks.signed_run(
            session,
            run_id=run_id,
            callback_secret=settings.callback_secret,
            headers=request.headers,
            body=body,
        )
        actor = "callback"
    else:
        principal = await get_principal(request, session, settings)
        if not principal.has(Scope.write):
            raise Forbidden("this operation needs the 'write' scope")
        # 404 alike for a missing run and another team's: a key acts on its own team's runs
        run = await run_service.get_visible_or_raise(session, principal=principal, run_id=run_id)
        actor = principal.actor
    try:
        report = CallbackIn.model_validate_json(body or b"{}")
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None
    run = await callbacks.apply(session, run=run, report=report, actor=actor)
    return await run_service.to_read(session, run)


@retrain_router.post(
    "/{product}:retrain",
    status_code=201,
    response_model=DecisionRead,
    responses=responses(400, 401, 403, 404, 409, 413, 415, 422),
)
async def retrain_product(
    product: Slug, body: RetrainIn, session: SessionDep, principal: WritePrincipal
) -> DecisionRead:
    """Ask for a retrain now: recorded as a decision (trigger ``manual``), subject to the guards
    unless an org admin forces it, and launched like any fired decision."""
    return await manual.retrain(
        session, principal=principal, product_name=product, reason=body.reason, force=body.force
    )
