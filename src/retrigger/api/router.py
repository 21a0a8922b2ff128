"""The ``/v1`` API: one explicit list of domain routers, mounted under ``API_PREFIX``."""

from fastapi import APIRouter, FastAPI

from retrigger.audit.router import router as audit_router
from retrigger.auth.router import router as api_keys_router
from retrigger.decisions.router import product_router as evaluate_router
from retrigger.decisions.router import router as decisions_router
from retrigger.dispatch.router import connections_router, retrain_router, runs_router
from retrigger.policies.router import bundles_router, product_policy_router, templates_router
from retrigger.products.router import router as products_router
from retrigger.references.router import router as references_router
from retrigger.signals.router import router as signals_router
from retrigger.signals.router import webhooks_router
from retrigger.teams.router import router as teams_router

API_PREFIX = "/v1"

ROUTERS: tuple[APIRouter, ...] = (
    teams_router,
    api_keys_router,
    products_router,
    product_policy_router,
    templates_router,
    bundles_router,
    audit_router,
    signals_router,
    webhooks_router,
    references_router,
    evaluate_router,
    decisions_router,
    connections_router,
    runs_router,
    retrain_router,
)


def include_api(app: FastAPI) -> None:
    """Include every domain router directly in the app (one level of routers: each extra
    nesting level is walked again on every request)."""
    for router in ROUTERS:
        app.include_router(router, prefix=API_PREFIX)
