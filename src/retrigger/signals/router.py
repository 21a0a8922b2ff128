"""``/v1/products/{product}/signals/*`` (metrics, samples, outcomes) and ``/v1/webhooks/*``.

All need a key with the ``ingest`` scope. A 2xx answer means the batch is committed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, BackgroundTasks, Header, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger import metrics
from retrigger.api.deps import IngestPrincipal, SessionDep, SettingsDep
from retrigger.api.problems import responses
from retrigger.auth.scopes import Principal
from retrigger.config import Settings
from retrigger.db.types import utcnow
from retrigger.decisions.scheduler import notify_ingested
from retrigger.schemas import Slug
from retrigger.signals import fastpath
from retrigger.signals import service as signal_service
from retrigger.signals.alert_schemas import (
    AlertmanagerPayload,
    AlertSource,
    GrafanaPayload,
    WebhookResult,
    payload_example,
)
from retrigger.signals.errors import IdempotencyKeyReused, SignalRejected
from retrigger.signals.schemas import (
    METRICS_EXAMPLE,
    OUTCOMES_EXAMPLE,
    SAMPLES_COLUMNS_EXAMPLE,
    SAMPLES_ROWS_EXAMPLE,
    IngestResult,
    MetricBatchIn,
    MetricsResult,
    OutcomeBatchIn,
    OutcomesResult,
    SampleBatchIn,
    SamplesResult,
)

router = APIRouter(prefix="/products/{product}/signals", tags=["signals"])
webhooks_router = APIRouter(prefix="/webhooks", tags=["webhooks"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        pattern=r"^[\x21-\x7e]+$",
        description="Makes a retried batch a no-op answered like the first time; the same key "
        "with a different body is a 409. Remembered `RETRIGGER_RETENTION_IDEMPOTENCY_DAYS`.",
    ),
]
_INGEST_ERRORS = responses(400, 401, 403, 404, 409, 413, 415, 422)


def _examples(**named: dict[str, Any]) -> dict[str, Any]:
    examples = {name: {"value": value} for name, value in named.items()}
    return {"requestBody": {"content": {"application/json": {"examples": examples}}}}


async def _request_hash(request: Request, key: str | None) -> str | None:
    # the raw body (already read and cached by the framework): a retry sends the same bytes
    return hashlib.sha256(await request.body()).hexdigest() if key is not None else None


R = TypeVar("R", MetricsResult, SamplesResult, OutcomesResult)


def _size(body: MetricBatchIn | SampleBatchIn | OutcomeBatchIn) -> int:
    """Points, rows or outcomes in a batch."""
    if isinstance(body, MetricBatchIn):
        return len(body.points)
    if isinstance(body, OutcomeBatchIn):
        return len(body.outcomes)
    if body.rows is not None:
        return len(body.rows)
    return max((len(values) for values in (body.columns or {}).values()), default=0)


def _count(kind: str, product: str, result: IngestResult) -> None:
    """Ingestion metrics of a batch that was stored (or recognised as a retry)."""
    if result.duplicate:
        metrics.observe_ingest(kind, product, "duplicate", result.accepted)
        return
    metrics.observe_ingest(kind, product, "accepted", result.accepted)
    metrics.observe_batch_size(kind, result.accepted)


async def _ingest(
    ingest: Callable[..., Awaitable[R]],
    *,
    kind: str,
    product: str,
    body: MetricBatchIn | SampleBatchIn | OutcomeBatchIn,
    request: Request,
    session: AsyncSession,
    principal: Principal,
    settings: Settings,
    background: BackgroundTasks,
    idempotency_key: str | None,
) -> R:
    """What every batch endpoint does around its own storage step."""
    ref = await signal_service.get_product_for_ingest(session, principal=principal, name=product)
    try:
        key = signal_service.batch_key(idempotency_key, body.batch_id)
        result = await ingest(
            session,
            product=ref,
            batch=body,
            key=key,
            request_hash=await _request_hash(request, key),
            now=utcnow(),
            max_future=timedelta(seconds=settings.signals_max_future_seconds),
        )
    except (SignalRejected, IdempotencyKeyReused):
        metrics.observe_ingest(kind, ref.name, "rejected", _size(body))
        raise
    _count(kind, ref.name, result)
    if not result.duplicate:
        # runs after the response, so after the commit: evaluation never delays ingestion
        background.add_task(notify_ingested, request.app.state, ref.id)
    return result


@router.post(
    "/metrics",
    response_model=MetricsResult,
    responses=_INGEST_ERRORS,
    openapi_extra=_examples(points=METRICS_EXAMPLE),
)
async def ingest_metrics(
    product: Slug,
    background: BackgroundTasks,
    body: MetricBatchIn,
    request: Request,
    session: SessionDep,
    principal: IngestPrincipal,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> MetricsResult:
    """Store a batch of metric points (all or nothing; up to 100,000 per request)."""
    key = signal_service.batch_key(idempotency_key, body.batch_id)
    engine = fastpath.applies(session, body, key)
    if engine is not None:
        ref = await fastpath.product(session, principal=principal, name=product)
        try:
            result = await fastpath.ingest_metrics(
                engine,
                product=ref,
                batch=body,
                now=utcnow(),
                max_future=timedelta(seconds=settings.signals_max_future_seconds),
            )
        except SignalRejected:
            metrics.observe_ingest("metrics", ref.name, "rejected", len(body.points))
            raise
        _count("metrics", ref.name, result)
        background.add_task(notify_ingested, request.app.state, ref.id)
        return result
    return await _ingest(
        signal_service.ingest_metrics,
        kind="metrics",
        product=product,
        body=body,
        request=request,
        session=session,
        principal=principal,
        settings=settings,
        background=background,
        idempotency_key=idempotency_key,
    )


@router.post(
    "/samples",
    response_model=SamplesResult,
    responses=_INGEST_ERRORS,
    openapi_extra=_examples(rows=SAMPLES_ROWS_EXAMPLE, columns=SAMPLES_COLUMNS_EXAMPLE),
)
async def ingest_samples(
    product: Slug,
    background: BackgroundTasks,
    body: SampleBatchIn,
    request: Request,
    session: SessionDep,
    principal: IngestPrincipal,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> SamplesResult:
    """Store production feature rows, checked against the product's feature schema."""
    return await _ingest(
        signal_service.ingest_samples,
        kind="samples",
        product=product,
        body=body,
        request=request,
        session=session,
        principal=principal,
        settings=settings,
        background=background,
        idempotency_key=idempotency_key,
    )


@router.post(
    "/outcomes",
    response_model=OutcomesResult,
    responses=_INGEST_ERRORS,
    openapi_extra=_examples(outcomes=OUTCOMES_EXAMPLE),
)
async def ingest_outcomes(
    product: Slug,
    background: BackgroundTasks,
    body: OutcomeBatchIn,
    request: Request,
    session: SessionDep,
    principal: IngestPrincipal,
    settings: SettingsDep,
    idempotency_key: IdempotencyKey = None,
) -> OutcomesResult:
    """Store predictions and labels; a label sent later joins its prediction by id."""
    return await _ingest(
        signal_service.ingest_outcomes,
        kind="outcomes",
        product=product,
        body=body,
        request=request,
        session=session,
        principal=principal,
        settings=settings,
        background=background,
        idempotency_key=idempotency_key,
    )


ProductLabel = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=100,
        description="Alert label that names the product (default: "
        "`RETRIGGER_ALERT_PRODUCT_LABEL`, itself `product` by default).",
    ),
]
_WEBHOOK_ERRORS = responses(400, 401, 403, 413, 415, 422)


async def _receive(
    payload: AlertmanagerPayload,
    source: AlertSource,
    product_label: str,
    session: AsyncSession,
    principal: Principal,
    request: Request,
    background: BackgroundTasks,
) -> WebhookResult:
    """Store a notification; products whose alert state changed are evaluated after the commit."""
    result = await signal_service.ingest_alerts(
        session,
        principal=principal,
        payload=payload,
        source=source,
        product_label=product_label,
        now=utcnow(),
    )
    for name, (new, redelivered) in result._per_product.items():
        metrics.observe_ingest("alerts", name, "accepted", new)
        metrics.observe_ingest("alerts", name, "duplicate", redelivered)
    metrics.observe_ingest("alerts", metrics.UNKNOWN_PRODUCT, "rejected", result.ignored)
    metrics.observe_batch_size("alerts", result.received)
    for product_id in result._changed_product_ids:
        background.add_task(notify_ingested, request.app.state, product_id)
    return result


@webhooks_router.post(
    "/alertmanager",
    response_model=WebhookResult,
    responses=_WEBHOOK_ERRORS,
    openapi_extra=_examples(firing=payload_example(AlertSource.alertmanager)),
)
async def alertmanager_webhook(
    body: AlertmanagerPayload,
    session: SessionDep,
    principal: IngestPrincipal,
    settings: SettingsDep,
    request: Request,
    background: BackgroundTasks,
    product_label: ProductLabel = None,
) -> WebhookResult:
    """Receive a Prometheus Alertmanager notification (webhook version 4)."""
    label = product_label or settings.alert_product_label
    return await _receive(
        body, AlertSource.alertmanager, label, session, principal, request, background
    )


@webhooks_router.post(
    "/grafana",
    response_model=WebhookResult,
    responses=_WEBHOOK_ERRORS,
    openapi_extra=_examples(firing=payload_example(AlertSource.grafana)),
)
async def grafana_webhook(
    body: GrafanaPayload,
    session: SessionDep,
    principal: IngestPrincipal,
    settings: SettingsDep,
    request: Request,
    background: BackgroundTasks,
    product_label: ProductLabel = None,
) -> WebhookResult:
    """Receive a Grafana alerting webhook notification."""
    label = product_label or settings.alert_product_label
    return await _receive(body, AlertSource.grafana, label, session, principal, request, background)
