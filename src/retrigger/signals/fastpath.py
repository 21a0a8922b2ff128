"""The hot path of monitoring: small metric batches without an idempotency key, on PostgreSQL.

One autocommitted multi-row INSERT on a pooled connection, with the product looked up from a short
per-process cache, instead of an ORM session with BEGIN, a product query, the INSERT and COMMIT.
The statement is atomic, so the batch is still all or nothing, and it is committed when the
response is sent. Everything else (SQLite, idempotency keys, large batches) takes the general path.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from retrigger.auth.scopes import Principal
from retrigger.signals import service as signal_service
from retrigger.signals.repository import ProductRef, metric_records
from retrigger.signals.schemas import MetricBatchIn, MetricsResult

MAX_POINTS = 16
PRODUCT_TTL = 5.0  # a deleted product fails the INSERT's foreign key; names never change owner

_INSERT = (
    "INSERT INTO metric_points "
    "(product_id, name, value, event_time, received_at, model_version, labels) "
    "SELECT * FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::timestamptz[], "
    "$5::timestamptz[], $6::text[], $7::jsonb[])"
)
_products: dict[str, tuple[float, ProductRef]] = {}


def applies(session: AsyncSession, batch: MetricBatchIn, key: str | None) -> AsyncEngine | None:
    """The engine to write with, when this batch can take the fast path.

    A session joined to an outer connection (an enclosing transaction) keeps the general path:
    its writes must stay inside that transaction.
    """
    bind = session.bind
    if (
        isinstance(bind, AsyncEngine)
        and bind.dialect.name == "postgresql"
        and key is None
        and len(batch.points) < MAX_POINTS
    ):
        return bind
    return None


async def product(session: AsyncSession, *, principal: Principal, name: str) -> ProductRef:
    """The product (visibility checked for this principal), cached briefly per process."""
    hit = _products.get(name)
    if hit is not None and hit[0] > time.monotonic():
        ref = hit[1]
        if principal.can_see_team(ref.team_id):
            return ref
    ref = await signal_service.get_product_for_ingest(session, principal=principal, name=name)
    if len(_products) > 10_000:
        _products.clear()
    _products[name] = (time.monotonic() + PRODUCT_TTL, ref)
    return ref


async def ingest_metrics(
    engine: AsyncEngine,
    *,
    product: ProductRef,
    batch: MetricBatchIn,
    now: datetime,
    max_future: timedelta,
) -> MetricsResult:
    """Check the points like the general path does, then store them with one statement."""
    signal_service.check_metric_times(batch.points, now=now, max_future=max_future)
    records: Sequence[tuple[Any, ...]] = metric_records(product.id, batch.points, now)
    columns = list(zip(*records, strict=True))
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        driver = raw.driver_connection
        assert driver is not None
        await driver.execute(_INSERT, *columns)
    return MetricsResult(accepted=len(records), batch_id=None, received_at=now)
