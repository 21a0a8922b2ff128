"""Retention: delete signals older than their kind's configured age (``RETRIGGER_RETENTION_*``).

Metric points, sample batches and outcomes go by event time (windows are by event time, so an
older row can never be read again); alerts by receive time, except occurrences still open;
idempotency keys by creation time. Zero days keeps a kind forever.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.config import Settings
from retrigger.signals.repository import SignalRepository


async def cleanup(session: AsyncSession, *, settings: Settings, now: datetime) -> dict[str, int]:
    """Delete expired signals in the caller's transaction; returns rows deleted per kind."""
    repo = SignalRepository(session)

    def cutoff(days: int) -> datetime | None:
        return now - timedelta(days=days) if days > 0 else None

    deleted = {"metrics": 0, "samples": 0, "outcomes": 0, "alerts": 0, "idempotency_keys": 0}
    metrics_before = cutoff(settings.retention_metrics_days)
    samples_before = cutoff(settings.retention_samples_days)
    outcomes_before = cutoff(settings.retention_outcomes_days)
    # per product: each delete is a range scan of an index that starts with product_id
    for product_id in await repo.product_ids():
        if metrics_before is not None:
            deleted["metrics"] += await repo.delete_metric_points(
                product_id=product_id, before=metrics_before
            )
        if samples_before is not None:
            deleted["samples"] += await repo.delete_sample_batches(
                product_id=product_id, before=samples_before
            )
        if outcomes_before is not None:
            deleted["outcomes"] += await repo.delete_outcomes(
                product_id=product_id, before=outcomes_before
            )
    alerts_before = cutoff(settings.retention_alerts_days)
    if alerts_before is not None:
        deleted["alerts"] = await repo.delete_alerts(before=alerts_before)
    keys_before = cutoff(settings.retention_idempotency_days)
    if keys_before is not None:
        deleted["idempotency_keys"] = await repo.delete_idempotency_keys(before=keys_before)
    return deleted
