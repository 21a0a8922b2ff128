"""The ``/v1`` router: one explicit list of domain routers."""

from fastapi import APIRouter

from retrigger.audit.router import router as audit_router
from retrigger.auth.router import router as api_keys_router
from retrigger.decisions.router import product_router as evaluate_router
from retrigger.decisions.router import router as decisions_router
from retrigger.policies.router import bundles_router, product_policy_router, templates_router
from retrigger.products.router import router as products_router
from retrigger.references.router import router as references_router
from retrigger.signals.router import router as signals_router
from retrigger.signals.router import webhooks_router
from retrigger.teams.router import router as teams_router

api_router = APIRouter(prefix="/v1")
for _router in (
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
):
    api_router.include_router(_router)
