"""``/healthz`` (the process answers) and ``/readyz`` (database reachable, schema at head)."""

from __future__ import annotations

import asyncio
import logging

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from retrigger import metrics
from retrigger.api.problems import problem_response, responses
from retrigger.db import migrate

router = APIRouter(tags=["operations"])
log = logging.getLogger("retrigger.health")

READY_TIMEOUT_S = 3.0


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    database: str
    schema_revision: str | None


@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """Liveness: the process serves requests."""
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, responses=responses(503))
async def readyz(request: Request) -> Readiness | JSONResponse:
    """Readiness: the database answers and its schema is at the code's head revision."""
    engine = request.app.state.db.read_engine
    try:
        current = await asyncio.wait_for(migrate.current_revision(engine), READY_TIMEOUT_S)
    except Exception as exc:  # any failure to reach the database means "not ready"
        log.warning("readiness: database unreachable: %s", type(exc).__name__)
        return problem_response(
            503, "NotReady", "database unreachable", slug="not-ready", instance="/readyz"
        )
    head = migrate.head_revision()
    if current != head:
        return problem_response(
            503,
            "NotReady",
            f"database schema at {current}, code expects {head}: run `retrigger db upgrade`",
            slug="not-ready",
            instance="/readyz",
        )
    return Readiness(status="ready", database="ok", schema_revision=current)


@router.get(
    "/metrics",
    response_class=Response,
    responses={200: {"content": {"text/plain": {}}, "description": "Prometheus exposition."}},
)
async def metrics_endpoint() -> Response:
    """Prometheus metrics of this process, or of every worker in multi-process mode."""
    return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)
