"""``create_app(settings)``: the FastAPI application with its middleware, routers and handlers."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from retrigger import __version__, metrics
from retrigger.api import errors as api_errors
from retrigger.api.health import router as health_router
from retrigger.api.middleware import BodyLimitMiddleware, RequestContextMiddleware, RouteTemplates
from retrigger.api.router import include_api
from retrigger.config import Settings, get_settings
from retrigger.db.session import Database

DESCRIPTION = """
retrigger decides when ML models get retrained, the same way for every product of an
organization: products report monitoring signals, common policies are evaluated, every decision
is explained, and retraining is launched on the product's orchestrator.

Authenticate with `Authorization: Bearer rtk_...`. Errors are RFC 9457 `application/problem+json`.
"""


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the app; the database engine is created here and disposed at shutdown."""
    settings = settings or get_settings()
    db = database or Database.from_settings(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics.DB_POOL.pool = db.engine.pool
        scheduler = None
        if settings.background_evaluation:
            from retrigger.decisions.scheduler import EvaluationScheduler

            scheduler = EvaluationScheduler(db, settings)
            scheduler.start()
        app.state.scheduler = scheduler
        # the import-time heap never dies: keep the collector from rescanning it every batch
        gc.collect()
        gc.freeze()
        yield
        if scheduler is not None:
            await scheduler.stop()
        await db.dispose()

    app = FastAPI(
        title="retrigger",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        openapi_tags=[
            {"name": "teams", "description": "Owners of products (org admin)."},
            {"name": "api-keys", "description": "Scoped API keys; tokens shown once."},
            {"name": "products", "description": "ML products and their feature schemas."},
            {
                "name": "policies",
                "description": "Org templates, product policies (versioned, immutable), "
                "policies as code, conformance.",
            },
            {"name": "signals", "description": "Metric points, feature samples, outcomes."},
            {"name": "webhooks", "description": "Alertmanager and Grafana alert receivers."},
            {"name": "references", "description": "Versioned baselines of the features."},
            {"name": "decisions", "description": "Explained decisions, evaluate now, backtests."},
            {"name": "audit", "description": "Who changed what, when."},
            {"name": "operations", "description": "Health, readiness, metrics."},
        ],
    )
    app.state.settings = settings
    app.state.db = db
    app.state.scheduler = None  # set by the lifespan when background evaluation runs
    metrics.DB_POOL.pool = db.engine.pool
    api_errors.install(app)
    app.include_router(health_router)
    include_api(app)
    # outermost first: request context sees every response, including 413s
    app.add_middleware(BodyLimitMiddleware, max_body_bytes=settings.max_body_bytes)
    templates = RouteTemplates(lambda: list(app.openapi().get("paths", {})))
    app.add_middleware(RequestContextMiddleware, templates=templates)
    return app


def app_factory() -> FastAPI:
    """Entry point for ``uvicorn --factory retrigger.main:app_factory``."""
    from retrigger import logs

    settings = get_settings()
    logs.configure(settings.log_level, settings.log_format)
    return create_app(settings)
