"""Retention: old signals go, recent ones and open alerts stay."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.config import Settings
from retrigger.signals.models import (
    Alert,
    IngestKey,
    MetricPoint,
    Outcome,
    SampleBatch,
    SampleColumn,
)
from retrigger.signals.retention import cleanup
from tests.signals.conftest import World, count

pytestmark = pytest.mark.asyncio(loop_scope="session")

NOW = datetime.now(UTC)
OLD = NOW - timedelta(days=400)
RECENT = NOW - timedelta(days=1)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def alert(product_id: int, fingerprint: str, status: str, **over: Any) -> Alert:
    values: dict[str, Any] = {
        "product_id": product_id,
        "fingerprint": fingerprint,
        "status": status,
        "starts_at": OLD,
        "ends_at": None,
        "labels": {},
        "annotations": {},
        "source": "alertmanager",
        "received_at": OLD,
    }
    values.update(over)
    return Alert(**values)


async def test_cleanup_deletes_old_rows_only(
    client: httpx.AsyncClient, world: World, session: AsyncSession, test_settings: Settings
) -> None:
    async def post(kind: str, body: dict[str, Any], **headers: str) -> None:
        r = await client.post(world.path(kind), json=body, headers={**world.ingest, **headers})
        assert r.status_code == 200, r.text

    for t in (OLD, RECENT):
        await post("metrics", {"points": [{"name": "acc", "value": 1, "time": iso(t)}]})
        await post("samples", {"rows": [{"amount": 1.0, "country": "DE"}], "time": iso(t)})
        await post(
            "outcomes",
            {"outcomes": [{"prediction_id": f"p{t.year}", "label": 1, "predicted_at": iso(t)}]},
        )
    await post("metrics", {"points": [{"name": "acc", "value": 2}]}, **{"Idempotency-Key": "old"})
    await post("metrics", {"points": [{"name": "acc", "value": 3}]}, **{"Idempotency-Key": "new"})
    await session.execute(
        update(IngestKey).where(IngestKey.key == "old").values(created_at=NOW - timedelta(days=3))
    )
    pid = world.product_id
    session.add_all(
        [
            alert(pid, "ended", "firing"),  # resolved long ago: both states go
            alert(pid, "ended", "resolved", ends_at=OLD + timedelta(hours=1)),
            alert(pid, "open", "firing"),  # still firing, no resolution: kept
            alert(pid, "fresh", "resolved", ends_at=RECENT, received_at=RECENT),
        ]
    )
    await session.flush()

    deleted = await cleanup(session, settings=test_settings, now=NOW)

    assert deleted == {
        "metrics": 1,
        "samples": 1,
        "outcomes": 1,
        "alerts": 2,
        "idempotency_keys": 1,
    }
    assert await count(session, MetricPoint, product_id=pid) == 3
    assert await count(session, SampleBatch, product_id=pid) == 1
    assert await count(session, SampleColumn) == 2  # the recent batch's amount and country
    assert await count(session, Outcome, product_id=pid) == 1
    assert await count(session, Alert, product_id=pid) == 2
    assert await count(session, Alert, fingerprint="open") == 1
    assert await count(session, IngestKey, product_id=pid) == 1


async def test_zero_days_keeps_forever(
    client: httpx.AsyncClient, world: World, session: AsyncSession, test_settings: Settings
) -> None:
    body = {"points": [{"name": "acc", "value": 1, "time": iso(OLD)}]}
    await client.post(world.path("metrics"), json=body, headers=world.ingest)
    settings = test_settings.model_copy(update={"retention_metrics_days": 0})
    deleted = await cleanup(session, settings=settings, now=NOW)
    assert deleted["metrics"] == 0
    assert await count(session, MetricPoint, product_id=world.product_id) == 1
