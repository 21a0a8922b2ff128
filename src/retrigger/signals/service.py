"""Ingestion rules: which product, idempotent batches, event-time checks, joins, alert mapping.

Every function works inside the caller's transaction and never commits: a batch is stored all or
nothing, and the request's unit of work commits it before the 2xx leaves. A batch that stores new
signals also marks its product for evaluation in that same transaction (``mark_dirty``), so the
evaluation it owes survives a restart and is seen by every process.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Principal
from retrigger.decisions.scheduler import mark_dirty
from retrigger.products.errors import ProductNotFound
from retrigger.signals import columns as codec
from retrigger.signals import joining
from retrigger.signals.alert_schemas import AlertmanagerPayload, AlertSource, WebhookResult
from retrigger.signals.errors import IdempotencyKeyReused, SignalRejected
from retrigger.signals.repository import ProductRef, SignalRepository
from retrigger.signals.schemas import (
    IngestResult,
    MetricBatchIn,
    MetricPointIn,
    MetricsResult,
    OutcomeBatchIn,
    OutcomesResult,
    SampleBatchIn,
    SamplesResult,
)

ResultT = TypeVar("ResultT", bound=IngestResult)


async def get_product_for_ingest(
    session: AsyncSession, *, principal: Principal, name: str
) -> ProductRef:
    """The product a batch is for; 404 alike for unknown products and other teams' products."""
    product = (await SignalRepository(session).products_by_name([name])).get(name)
    if product is None or not principal.can_see_team(product.team_id):
        raise ProductNotFound(f"product '{name}' not found")
    return product


def batch_key(header: str | None, body_key: str | None) -> str | None:
    """The idempotency key from the ``Idempotency-Key`` header or the body's ``batch_id``."""
    if header is not None and body_key is not None and header != body_key:
        raise SignalRejected(
            "the Idempotency-Key header and batch_id differ",
            errors=[
                {
                    "loc": ["body", "batch_id"],
                    "msg": "differs from the Idempotency-Key header",
                    "type": "value_error",
                }
            ],
        )
    return header if header is not None else body_key


async def _idempotent(
    repo: SignalRepository,
    *,
    product: ProductRef,
    kind: str,
    key: str | None,
    request_hash: str | None,
    model: type[ResultT],
    produce: Callable[[], Awaitable[ResultT]],
) -> ResultT:
    """Run ``produce`` once per (product, kind, key); a retry gets the stored answer back."""
    if key is None:
        return await produce()
    digest = request_hash or ""
    if not await repo.claim_key(product_id=product.id, kind=kind, key=key, request_hash=digest):
        stored = await repo.get_key(product_id=product.id, kind=kind, key=key)
        if stored is None or stored.response is None:  # pragma: no cover - claim just saw it
            raise IdempotencyKeyReused(f"idempotency key '{key}' is being used concurrently")
        if stored.request_hash != digest:
            raise IdempotencyKeyReused(
                f"idempotency key '{key}' was already used for a different {kind} batch",
                errors=[
                    {"loc": ["header", "Idempotency-Key"], "msg": "reused", "type": "conflict"}
                ],
            )
        return model.model_validate({**stored.response, "duplicate": True})
    result = await produce()
    await repo.store_response(
        product_id=product.id, kind=kind, key=key, response=result.model_dump(mode="json")
    )
    return result


async def ingest_metrics(
    session: AsyncSession,
    *,
    product: ProductRef,
    batch: MetricBatchIn,
    key: str | None,
    request_hash: str | None,
    now: datetime,
    max_future: timedelta,
) -> MetricsResult:
    """Store a batch of metric points (event time defaults to ``now``)."""
    repo = SignalRepository(session)

    async def produce() -> MetricsResult:
        points = batch.points
        check_metric_times(points, now=now, max_future=max_future)
        await repo.insert_metric_points(product_id=product.id, points=points, received_at=now)
        await mark_dirty(session, [product.id], now=now)
        return MetricsResult(accepted=len(points), batch_id=key, received_at=now)

    return await _idempotent(
        repo,
        product=product,
        kind="metrics",
        key=key,
        request_hash=request_hash,
        model=MetricsResult,
        produce=produce,
    )


def check_metric_times(
    points: Sequence[MetricPointIn], *, now: datetime, max_future: timedelta
) -> None:
    """Default missing event times to ``now``; refuse times too far in the future (422)."""
    limit = now + max_future
    errors = codec.ErrorList()
    for i, p in enumerate(points):
        t = p.get("time")
        if t is None:
            p["time"] = now
        elif t > limit:
            errors.add(("body", "points", i, "time"), _future_msg(max_future), "future_time")
    errors.raise_if_any("metric points rejected")


def _future_msg(max_future: timedelta) -> str:
    return f"more than {int(max_future.total_seconds())} s in the future"


async def ingest_samples(
    session: AsyncSession,
    *,
    product: ProductRef,
    batch: SampleBatchIn,
    key: str | None,
    request_hash: str | None,
    now: datetime,
    max_future: timedelta,
) -> SamplesResult:
    """Check feature rows against the product's schema and store them as one column per feature."""
    repo = SignalRepository(session)

    async def produce() -> SamplesResult:
        errors = codec.ErrorList()
        if batch.time is not None and batch.time > now + max_future:
            errors.add(("body", "time"), _future_msg(max_future), "future_time")
        errors.raise_if_any("samples rejected")
        if batch.rows is not None:
            n_rows, encoded = len(batch.rows), codec.encode_rows(batch.rows, product.features)
        else:
            assert batch.columns is not None  # the schema wants exactly one layout
            n_rows, encoded = codec.encode_columns(batch.columns, product.features)
        batch_id = await repo.add_sample_batch(
            product_id=product.id,
            event_time=batch.time or now,
            received_at=now,
            n_rows=n_rows,
            model_version=batch.model_version,
        )
        await repo.insert_sample_columns(
            [
                {
                    "batch_id": batch_id,
                    "feature": c.feature,
                    "kind": str(c.kind),
                    "n_missing": c.n_missing,
                    "data": c.data,
                    "categories": c.categories,
                }
                for c in encoded
            ]
        )
        await mark_dirty(session, [product.id], now=now)
        stored = {c.feature for c in encoded}
        missing = {c.feature: c.n_missing for c in encoded if c.n_missing}
        missing.update({f["name"]: n_rows for f in product.features if f["name"] not in stored})
        return SamplesResult(
            accepted=n_rows,
            batch_id=key,
            received_at=now,
            sample_batch_id=batch_id,
            missing=missing,
            out_of_range={c.feature: c.out_of_range for c in encoded if c.out_of_range},
        )

    return await _idempotent(
        repo,
        product=product,
        kind="samples",
        key=key,
        request_hash=request_hash,
        model=SamplesResult,
        produce=produce,
    )


async def ingest_outcomes(
    session: AsyncSession,
    *,
    product: ProductRef,
    batch: OutcomeBatchIn,
    key: str | None,
    request_hash: str | None,
    now: datetime,
    max_future: timedelta,
) -> OutcomesResult:
    """Upsert outcomes by prediction id; a prediction and its label join into one row."""
    repo = SignalRepository(session)

    async def produce() -> OutcomesResult:
        limit = now + max_future
        errors = codec.ErrorList()
        for i, entry in enumerate(batch.outcomes):
            for name in ("predicted_at", "labelled_at"):
                value = getattr(entry, name)
                if value is not None and value > limit:
                    errors.add(
                        ("body", "outcomes", i, name), _future_msg(max_future), "future_time"
                    )
            for name, msg in joining.task_problems(entry, batch.task):
                errors.add(("body", "outcomes", i, name), msg, "wrong_kind")
        errors.raise_if_any("outcomes rejected")
        incoming = joining.merge_entries(batch.outcomes)
        existing = await repo.outcomes_for_update(
            product_id=product.id, prediction_ids=list(incoming)
        )
        fresh = [pid for pid in incoming if pid not in existing]
        new_rows = []
        for pid in fresh:
            row = joining.apply(None, incoming[pid], task=batch.task, now=now)
            row.update(product_id=product.id, prediction_id=pid, detector_processed=False)
            new_rows.append(row)
        inserted = await repo.insert_new_outcomes(new_rows)
        raced = [pid for pid in fresh if pid not in inserted]
        if raced:  # a concurrent batch inserted them first: merge into its rows instead
            existing.update(
                await repo.outcomes_for_update(product_id=product.id, prediction_ids=raced)
            )
        joined = sum(1 for r in new_rows if r["prediction_id"] in inserted and r["joined_at"])
        updates = []
        for pid, current in existing.items():
            was_joined = current.joined_at is not None
            row = joining.apply(current._asdict(), incoming[pid], task=batch.task, now=now)
            joined += int(not was_joined and row["joined_at"] is not None)
            updates.append({k: row[k] for k in _UPDATABLE})
        await repo.update_outcomes(updates)
        if inserted or updates:
            await mark_dirty(session, [product.id], now=now)
        return OutcomesResult(
            accepted=len(batch.outcomes),
            batch_id=key,
            received_at=now,
            inserted=len(inserted),
            updated=len(updates),
            joined=joined,
        )

    return await _idempotent(
        repo,
        product=product,
        kind="outcomes",
        key=key,
        request_hash=request_hash,
        model=OutcomesResult,
        produce=produce,
    )


_UPDATABLE = (
    "id",
    *joining.OUTCOME_FIELDS,
    "event_time",
    "error",
    "joined_at",
    "updated_at",
)


async def ingest_alerts(
    session: AsyncSession,
    *,
    principal: Principal,
    payload: AlertmanagerPayload,
    source: AlertSource,
    product_label: str,
    now: datetime,
) -> WebhookResult:
    """Store each alert under the product its label names; unknown products are only counted."""
    repo = SignalRepository(session)
    names = {a.labels.get(product_label) for a in payload.alerts} - {None}
    products = await repo.products_by_name(sorted(n for n in names if n)) if names else {}
    params: dict[tuple[Any, ...], dict[str, Any]] = {}
    ignored: list[str] = []
    n_ignored = 0
    seen: dict[int, int] = {}  # product id -> alerts naming it
    for alert in payload.alerts:
        name = alert.labels.get(product_label)
        product = products.get(name) if name else None
        if product is None or not principal.can_see_team(product.team_id):
            n_ignored += 1
            if name and name not in ignored and len(ignored) < 20:
                ignored.append(name)
            continue
        seen[product.id] = seen.get(product.id, 0) + 1
        identity = (product.id, alert.fingerprint, str(alert.status), alert.starts_at)
        params[identity] = {
            "product_id": product.id,
            "fingerprint": alert.fingerprint,
            "status": str(alert.status),
            "starts_at": alert.starts_at,
            "ends_at": alert.ends_at,
            "labels": dict(alert.labels),
            "annotations": dict(alert.annotations),
            "source": str(source),
            "group_key": payload.group_key,
            "generator_url": alert.generator_url,
            "received_at": now,
        }
    groups: dict[int, list[dict[str, Any]]] = {}
    for row in params.values():
        groups.setdefault(row["product_id"], []).append(row)
    # one insert per product (there is usually one), so each product's new alerts are known
    new = {product_id: await repo.insert_alerts(rows) for product_id, rows in groups.items()}
    # only products with new rows: a redelivery changes nothing (its first delivery marked them)
    changed = sorted(pid for pid, n in new.items() if n)
    await mark_dirty(session, changed, now=now)
    accepted = sum(new.values())
    received = len(payload.alerts)
    result = WebhookResult(
        received=received,
        accepted=accepted,
        duplicates=received - n_ignored - accepted,
        ignored=n_ignored,
        ignored_products=ignored,
    )
    named = {p.id: p.name for p in products.values()}
    result._per_product = {named[pid]: (new[pid], n - new[pid]) for pid, n in seen.items()}
    result._changed_product_ids = changed
    return result
