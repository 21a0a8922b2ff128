"""``create_app(settings)``: the FastAPI application with its middleware, routers and handlers."""

from __future__ import annotations

import gc
import logging
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
from retrigger.signals.fastlane import MetricsLane
from retrigger.signals.fastpath import POOL_SIZE, DriverPool

DESCRIPTION = """
retrigger decides when ML models get retrained, the same way for every product of an
organization: products report monitoring signals, common policies are evaluated, every decision
is explained, and retraining is launched on the product's orchestrator.

Authenticate with `Authorization: Bearer rtk_...`. Errors are RFC 9457 `application/problem+json`.
"""

log = logging.getLogger("retrigger")


def create_app(settings: Settings | None = None, *, database: Database | None = None) -> FastAPI:
    """Build the app; the database engine is created here and disposed at shutdown."""
    settings = settings or get_settings()
    db = database or Database.from_settings(settings)
    lane_pool = DriverPool(
        db.engine,
        size=min(POOL_SIZE, settings.database_pool_size),
        timeout=settings.database_pool_timeout,
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        metrics.DB_POOL.pool = db.engine.pool
        from retrigger.state_gauges import StateGauges

        gauges = StateGauges(db, interval=settings.state_gauges_interval_seconds)
        gauges.start()
        scheduler = worker = None
        if settings.background_evaluation:
            from retrigger.decisions.scheduler import EvaluationScheduler

            scheduler = EvaluationScheduler(db, settings)
            if settings.embedded_worker:
                from retrigger.worker import Worker

                scheduler.start()
                worker = Worker(db, settings, scheduler=scheduler)
                worker.start()
        elif settings.embedded_worker:
            log.warning(
                "RETRIGGER_BACKGROUND_EVALUATION=false: this process runs no background work; "
                "runs are dispatched only by `retrigger worker` processes"
            )
        app.state.scheduler = scheduler
        app.state.worker = worker
        # the import-time heap never dies: keep the collector from rescanning it every batch
        gc.collect()
        gc.freeze()
        # a batch of 1000 points makes some 1e4 short-lived objects, and at the default gen-0
        # threshold (700) the collector runs a dozen times per batch: ~8% of ingest throughput
        gc.set_threshold(50_000, 50, 100)
        yield
        if worker is not None:
            await worker.stop()
        if scheduler is not None:
            await scheduler.stop()
        await gauges.stop()
        await lane_pool.close()
        await db.dispose()
        metrics.process_exiting()

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
            {"name": "connections", "description": "Orchestrator endpoints; secrets by reference."},
            {"name": "runs", "description": "Retraining runs: lifecycle, approval, callbacks."},
            {"name": "audit", "description": "Who changed what, when."},
            {"name": "operations", "description": "Health, readiness, metrics."},
        ],
    )
    app.state.settings = settings
    app.state.db = db
    app.state.scheduler = None  # set by the lifespan when background evaluation runs
    app.state.lane_pool = lane_pool
    app.state.worker = None  # set by the lifespan when the embedded worker runs
    metrics.DB_POOL.pool = db.engine.pool
    api_errors.install(app)
    app.include_router(health_router)
    include_api(app)
    # each one added wraps the ones before: request context sees every response, including 413s,
    # and the metrics lane sees only bodies within the limit
    app.add_middleware(MetricsLane, pool=lane_pool)
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
