"""SQL of the signals domain's writes: bulk inserts (COPY on PostgreSQL), upserts, idempotency
keys, retention deletes. The readers' queries are in ``read_repository.py``.

Writes never go through ORM ``add`` per row: metric points use ``COPY`` on PostgreSQL and one
executemany ``INSERT`` on SQLite; the other kinds use Core statements with executemany.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, and_, delete, exists, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from retrigger.products.models import Product
from retrigger.signals.models import (
    Alert,
    IngestKey,
    MetricPoint,
    Outcome,
    SampleBatch,
    SampleColumn,
)

# one statement's bound parameters stay well under SQLite's and asyncpg's limits
CHUNK = 1000
# below this many points, one INSERT beats COPY's extra round trip
COPY_THRESHOLD = 16

# Core tables (typed as such) for executemany without the ORM
METRIC_TABLE = cast(Table, MetricPoint.__table__)
BATCH_TABLE = cast(Table, SampleBatch.__table__)
COLUMN_TABLE = cast(Table, SampleColumn.__table__)
OUTCOME_TABLE = cast(Table, Outcome.__table__)
ALERT_TABLE = cast(Table, Alert.__table__)

METRIC_COLUMNS = (
    "product_id",
    "name",
    "value",
    "event_time",
    "received_at",
    "model_version",
    "labels",
)


@dataclass(frozen=True)
class ProductRef:
    """What ingestion needs of a product: id, owner team, feature schema."""

    id: int
    name: str
    team_id: int
    features: list[dict[str, Any]]


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


class SignalRepository:
    """Queries over the signal tables, on one session (the request's unit of work)."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.dialect = session.get_bind().dialect.name

    def _insert(self, model: Any) -> Any:
        if self.dialect == "postgresql":
            return postgresql.insert(model)
        return sqlite.insert(model)

    # --- products ---

    async def products_by_name(self, names: Sequence[str]) -> dict[str, ProductRef]:
        """Products by name, as light references (one query, no ORM identity map)."""
        stmt = select(Product.id, Product.name, Product.team_id, Product.features).where(
            Product.name.in_(names)
        )
        rows = (await self.session.execute(stmt)).all()
        return {r.name: ProductRef(r.id, r.name, r.team_id, list(r.features or [])) for r in rows}

    # --- idempotency ---

    async def claim_key(self, *, product_id: int, kind: str, key: str, request_hash: str) -> bool:
        """Reserve an idempotency key in this transaction; False if it already exists.

        A concurrent request with the same key waits here until the first one commits (then
        it sees the stored answer) or rolls back (then it claims the key itself).
        """
        stmt = (
            self._insert(IngestKey)
            .values(product_id=product_id, kind=kind, key=key, request_hash=request_hash)
            .on_conflict_do_nothing(index_elements=["product_id", "kind", "key"])
            .returning(IngestKey.id)
        )
        return (await self.session.execute(stmt)).first() is not None

    async def get_key(self, *, product_id: int, kind: str, key: str) -> Any:
        stmt = select(IngestKey.request_hash, IngestKey.response).where(
            IngestKey.product_id == product_id, IngestKey.kind == kind, IngestKey.key == key
        )
        return (await self.session.execute(stmt)).first()

    async def store_response(
        self, *, product_id: int, kind: str, key: str, response: dict[str, Any]
    ) -> None:
        stmt = (
            update(IngestKey)
            .where(IngestKey.product_id == product_id, IngestKey.kind == kind, IngestKey.key == key)
            .values(response=response)
        )
        await self.session.execute(stmt)

    # --- metric points ---

    async def insert_metric_points(
        self, *, product_id: int, points: Sequence[Mapping[str, Any]], received_at: datetime
    ) -> None:
        """Store validated points (``time`` already defaulted) in one round trip."""
        if self.dialect == "postgresql" and len(points) >= COPY_THRESHOLD:
            conn = await self.session.connection()
            raw = await conn.get_raw_connection()
            driver = raw.driver_connection
            assert driver is not None
            await driver.copy_records_to_table(
                "metric_points",
                records=metric_records(product_id, points, received_at),
                columns=METRIC_COLUMNS,
            )
            return
        params = [
            {
                "product_id": product_id,
                "name": p["name"],
                "value": p["value"],
                "event_time": p["time"],
                "received_at": received_at,
                "model_version": p.get("model_version"),
                "labels": p.get("labels") or None,
            }
            for p in points
        ]
        await self.session.execute(METRIC_TABLE.insert(), params)

    # --- samples ---

    async def add_sample_batch(
        self,
        *,
        product_id: int,
        event_time: datetime,
        received_at: datetime,
        n_rows: int,
        model_version: str | None,
    ) -> int:
        stmt = (
            BATCH_TABLE.insert()
            .values(
                product_id=product_id,
                event_time=event_time,
                received_at=received_at,
                n_rows=n_rows,
                model_version=model_version,
            )
            .returning(BATCH_TABLE.c.id)
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def insert_sample_columns(self, params: list[dict[str, Any]]) -> None:
        if params:
            await self.session.execute(COLUMN_TABLE.insert(), params)

    # --- outcomes ---

    async def outcomes_for_update(
        self, *, product_id: int, prediction_ids: Sequence[str]
    ) -> dict[str, Any]:
        """Existing outcome rows of these prediction ids, locked until the transaction ends."""
        out: dict[str, Any] = {}
        for part in chunks(prediction_ids):
            stmt = (
                select(OUTCOME_TABLE)
                .where(Outcome.product_id == product_id, Outcome.prediction_id.in_(part))
                .with_for_update()
            )
            for row in (await self.session.execute(stmt)).all():
                out[row.prediction_id] = row
        return out

    async def insert_new_outcomes(self, params: list[dict[str, Any]]) -> set[str]:
        """Insert outcomes whose prediction id is new; returns the ids actually inserted
        (a concurrent batch may have inserted some of them first)."""
        inserted: set[str] = set()
        table = OUTCOME_TABLE
        for part in chunks(params):
            stmt = (
                self._insert(table)
                .on_conflict_do_nothing(index_elements=["product_id", "prediction_id"])
                .returning(table.c.prediction_id)
            )
            result = await self.session.execute(stmt, list(part))
            inserted.update(result.scalars().all())
        return inserted

    async def update_outcomes(self, params: list[dict[str, Any]]) -> None:
        """Bulk UPDATE by primary key (each dict holds ``id`` and the new values)."""
        if params:
            await self.session.execute(update(Outcome), params)

    # --- alerts ---

    async def insert_alerts(self, params: list[dict[str, Any]]) -> int:
        """Insert alert states, skipping ones already stored; returns how many were new."""
        inserted = 0
        table = ALERT_TABLE
        for part in chunks(params, 500):
            stmt = (
                self._insert(table)
                .on_conflict_do_nothing(
                    index_elements=["product_id", "fingerprint", "status", "starts_at"]
                )
                .returning(table.c.id)
            )
            inserted += len((await self.session.execute(stmt, list(part))).all())
        return inserted

    # --- retention ---

    async def product_ids(self) -> list[int]:
        return list((await self.session.execute(select(Product.id))).scalars().all())

    async def delete_metric_points(self, *, product_id: int, before: datetime) -> int:
        stmt = delete(MetricPoint).where(
            MetricPoint.product_id == product_id, MetricPoint.event_time < before
        )
        return await self._count(stmt)

    async def delete_sample_batches(self, *, product_id: int, before: datetime) -> int:
        old = select(SampleBatch.id).where(
            SampleBatch.product_id == product_id, SampleBatch.event_time < before
        )
        # explicit, not left to ON DELETE CASCADE: same cost on both databases, and counted
        await self._count(delete(SampleColumn).where(SampleColumn.batch_id.in_(old)))
        stmt = delete(SampleBatch).where(
            SampleBatch.product_id == product_id, SampleBatch.event_time < before
        )
        return await self._count(stmt)

    async def delete_outcomes(self, *, product_id: int, before: datetime) -> int:
        stmt = delete(Outcome).where(Outcome.product_id == product_id, Outcome.event_time < before)
        return await self._count(stmt)

    async def delete_alerts(self, *, before: datetime) -> int:
        """Alert states received before the cutoff, except open occurrences (firing, no end,
        no resolution stored): those still drive ``active_alerts``."""
        resolved = aliased(Alert)
        still_open = and_(
            Alert.status == "firing",
            Alert.ends_at.is_(None),
            ~exists().where(
                resolved.product_id == Alert.product_id,
                resolved.fingerprint == Alert.fingerprint,
                resolved.starts_at == Alert.starts_at,
                resolved.status == "resolved",
            ),
        )
        ids = select(Alert.id).where(Alert.received_at < before, ~still_open)
        # ids first: SQLite and PostgreSQL then agree on what a self-referencing delete sees
        doomed = list((await self.session.execute(ids)).scalars().all())
        count = 0
        for part in chunks(doomed):
            count += await self._count(delete(Alert).where(Alert.id.in_(part)))
        return count

    async def delete_idempotency_keys(self, *, before: datetime) -> int:
        return await self._count(delete(IngestKey).where(IngestKey.created_at < before))

    async def _count(self, stmt: Any) -> int:
        result: Any = await self.session.execute(stmt.execution_options(synchronize_session=False))
        return int(result.rowcount or 0)


_json_text = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def metric_records(
    product_id: int, points: Sequence[Mapping[str, Any]], received_at: datetime
) -> list[tuple[Any, ...]]:
    """COPY rows; labels become JSON text (what the jsonb codec on SQLAlchemy's asyncpg
    connections takes), encoded once per distinct label set: batches repeat a few sets."""
    encoded: dict[tuple[tuple[str, str], ...], str] = {}
    records = []
    for p in points:
        labels = p.get("labels")
        text = None
        if labels:
            key = tuple(labels.items())
            text = encoded.get(key)
            if text is None:
                text = encoded[key] = _json_text(labels)
        records.append(
            (
                product_id,
                p["name"],
                p["value"],
                p["time"],
                received_at,
                p.get("model_version"),
                text,
            )
        )
    return records


def window(
    column: Any, since: datetime | None, until: datetime | None
) -> list[ColumnElement[bool]]:
    """``since <= column < until``, either bound optional."""
    out: list[ColumnElement[bool]] = []
    if since is not None:
        out.append(column >= since)
    if until is not None:
        out.append(column < until)
    return out
