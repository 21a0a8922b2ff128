"""The hot path of monitoring: small metric batches without an idempotency key, on PostgreSQL.

One autocommitted ``INSERT ... SELECT`` that also resolves the product by name and owner team,
instead of an ORM session with BEGIN, a product query, the INSERT and COMMIT. The statement is
atomic, so the batch is still all or nothing, and it is committed when the response is sent.
Everything else (SQLite, idempotency keys, large batches) takes the general path.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from retrigger.auth.scopes import Principal
from retrigger.products.errors import ProductNotFound
from retrigger.signals import service as signal_service
from retrigger.signals.repository import ProductRef, metric_records
from retrigger.signals.schemas import MetricBatchIn, MetricsResult

MAX_POINTS = 16
PRODUCT_TTL = 5.0  # the INSERT itself checks that the product still exists under its team
POOL_SIZE = 8  # one short autocommitted INSERT per use: a few connections carry a worker's load

# the product is found by name (and owner team, unless the caller is org-wide) in the statement
# itself: a product deleted or re-created since it was cached stores nothing, or the right id
_INSERT = (
    "INSERT INTO metric_points "
    "(product_id, name, value, event_time, received_at, model_version, labels) "
    "SELECT p.id, u.name, u.value, u.event_time, $3, u.model_version, u.labels "
    "FROM products AS p, unnest($4::text[], $5::float8[], $6::timestamptz[], $7::text[], "
    "$8::jsonb[]) WITH ORDINALITY AS u(name, value, event_time, model_version, labels, n) "
    "WHERE p.name = $1 AND ($2::bigint IS NULL OR p.team_id = $2) "
    "ORDER BY u.n RETURNING product_id"
)
# the INSERT, then, in the same statement and round trip, the product's evaluation mark: set
# only on a clean row (an already marked one is read, not written, so steady traffic takes no
# row lock), the state row created for a product never evaluated. Data-modifying CTEs all run,
# whatever the outer SELECT.
INSERT_AND_MARK = (
    "WITH ins AS (" + _INSERT + "), "
    "p AS (SELECT product_id FROM ins LIMIT 1), "
    "marked AS (UPDATE product_states SET dirty_since = $3 "
    "WHERE product_id = (SELECT product_id FROM p) AND dirty_since IS NULL), "
    "created AS (INSERT INTO product_states "
    "(product_id, detectors, schedules, history, fired_at, dirty_since, updated_at) "
    "SELECT product_id, '{}'::jsonb, '{}'::jsonb, '{}'::jsonb, '[]'::jsonb, $3, $3 FROM p "
    "WHERE NOT EXISTS (SELECT 1 FROM product_states AS s WHERE s.product_id = p.product_id) "
    "ON CONFLICT (product_id) DO UPDATE SET dirty_since = EXCLUDED.dirty_since "
    "WHERE product_states.dirty_since IS NULL) "
    "SELECT product_id FROM p"
)
# connect() arguments that SQLAlchemy's asyncpg dialect consumes itself
_DIALECT_ONLY = (
    "async_creator_fn",
    "prepared_statement_cache_size",
    "prepared_statement_name_func",
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


async def insert_points(
    conn: Any, *, product: str, team_id: int | None, batch: MetricBatchIn, now: datetime
) -> int | None:
    """Store the points (times already defaulted) under the product of that name, if ``team_id``
    owns it (``None``: whoever does), and mark the product for evaluation, in one statement; its
    id, or ``None`` when there is no such product."""
    records = metric_records(0, batch.points, now)
    _, names, values, times, _, versions, labels = zip(*records, strict=True)
    product_id: int | None = await conn.fetchval(
        INSERT_AND_MARK, product, team_id, now, names, values, times, versions, labels
    )
    return product_id


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
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        stored = await insert_points(
            raw.driver_connection,
            product=product.name,
            team_id=product.team_id,
            batch=batch,
            now=now,
        )
    if stored is None:  # deleted (or moved to another team) since it was cached
        _products.pop(product.name, None)
        raise ProductNotFound(f"product '{product.name}' not found")
    return MetricsResult(accepted=len(batch.points), batch_id=None, received_at=now)


async def _keep_session(conn: Any) -> None:
    """Pool reset: nothing to undo (asyncpg itself still rolls back a transaction left open)."""


class DriverPool:
    """asyncpg connections of the fast path, opened on first use with the engine's arguments.

    Each use is one autocommitted statement that changes no session state, so a connection goes
    back without the reset query (a round trip) asyncpg runs by default, and without the ping
    (another one) the engine's pool makes on every checkout.
    """

    def __init__(self, engine: AsyncEngine, *, size: int = POOL_SIZE, timeout: float) -> None:
        self.enabled = engine.dialect.name == "postgresql"
        self._engine = engine
        self._size = size
        self._timeout = timeout
        self._pool: Any = None
        self._lock = asyncio.Lock()

    async def acquire(self) -> Any:
        """A connection; give it back with ``release``."""
        pool = self._pool if self._pool is not None else await self._open()
        return await pool.acquire(timeout=self._timeout)

    async def release(self, conn: Any) -> None:
        await self._pool.release(conn)

    async def close(self) -> None:
        """Close the connections, once those in use are back (a later ``acquire`` reopens)."""
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    async def _open(self) -> Any:
        async with self._lock:
            if self._pool is None:
                _, kwargs = self._engine.dialect.create_connect_args(self._engine.url)
                for name in _DIALECT_ONLY:
                    kwargs.pop(name, None)
                self._pool = await asyncpg.create_pool(
                    min_size=0, max_size=self._size, reset=_keep_session, **kwargs
                )
            return self._pool
