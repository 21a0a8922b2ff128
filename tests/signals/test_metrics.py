"""Metric points over HTTP: storage with event and receive time, validation, scope, limits."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Scope
from retrigger.signals.models import MetricPoint
from tests.fixtures.factories import create_key, create_product, create_team
from tests.signals.conftest import World, bearer, count, team_of

pytestmark = pytest.mark.asyncio(loop_scope="session")


ONE_POINT = {"points": [{"name": "a", "value": 1}]}


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


class TestIngestMetrics:
    async def test_stores_points_with_event_and_receive_time(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        t = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
        body = {
            "points": [
                {"name": "accuracy", "value": 0.91, "time": iso(t), "model_version": "v3"},
                {"name": "accuracy", "value": 0.89, "time": iso(t - timedelta(hours=1))},
                {"name": "latency_ms", "value": 12, "labels": {"region": "eu"}},
            ]
        }
        r = await client.post(world.path("metrics"), json=body, headers=world.ingest)
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["accepted"] == 3
        assert out["duplicate"] is False
        received = datetime.fromisoformat(out["received_at"])
        rows = (
            (
                await session.execute(
                    select(MetricPoint)
                    .where(MetricPoint.product_id == world.product_id)
                    .order_by(MetricPoint.id)
                )
            )
            .scalars()
            .all()
        )
        assert [(p.name, p.value) for p in rows] == [
            ("accuracy", 0.91),
            ("accuracy", 0.89),
            ("latency_ms", 12.0),
        ]
        assert rows[0].event_time == t
        assert rows[0].model_version == "v3"
        assert rows[1].event_time == t - timedelta(hours=1)  # out of order is fine
        assert rows[2].event_time == received  # default: receive time
        assert all(p.received_at == received for p in rows)
        assert rows[2].labels == {"region": "eu"}
        assert rows[0].labels is None

    async def test_large_batch_uses_bulk_path(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        points = [
            {"name": "score_mean", "value": i / 10, "labels": {"shard": str(i % 3)}}
            for i in range(1000)
        ]
        r = await client.post(world.path("metrics"), json={"points": points}, headers=world.ingest)
        assert r.status_code == 200, r.text
        assert await count(session, MetricPoint, product_id=world.product_id) == 1000
        last = (
            await session.execute(
                select(MetricPoint.value, MetricPoint.labels)
                .where(MetricPoint.product_id == world.product_id)
                .order_by(MetricPoint.id.desc())
                .limit(1)
            )
        ).one()
        assert last.value == 99.9
        assert last.labels == {"shard": "0"}


class TestMetricValidation:
    @pytest.mark.parametrize(
        ("raw", "loc"),
        [
            (b'{"points": [{"name": "a", "value": 1}, {"name": "a", "value": NaN}]}', 1),
            (b'{"points": [{"name": "a", "value": Infinity}]}', 0),
            (b'{"points": [{"name": "a", "value": -Infinity}]}', 0),
        ],
    )
    async def test_non_finite_value_is_422_naming_it(
        self,
        client: httpx.AsyncClient,
        world: World,
        session: AsyncSession,
        raw: bytes,
        loc: int,
    ) -> None:
        headers = {**world.ingest, "Content-Type": "application/json"}
        r = await client.post(world.path("metrics"), content=raw, headers=headers)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "points", loc, "value"]
        assert await count(session, MetricPoint, product_id=world.product_id) == 0

    async def test_future_time_is_422_and_nothing_is_written(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        soon = datetime.now(UTC) + timedelta(minutes=2)
        late = datetime.now(UTC) + timedelta(minutes=10)
        body = {
            "points": [
                {"name": "a", "value": 1, "time": iso(soon)},  # within the skew allowance
                {"name": "a", "value": 2, "time": iso(late)},
            ]
        }
        r = await client.post(world.path("metrics"), json=body, headers=world.ingest)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["errors"][0]["loc"] == ["body", "points", 1, "time"]
        assert "points[1].time" in problem["detail"]
        assert await count(session, MetricPoint, product_id=world.product_id) == 0

    @pytest.mark.parametrize(
        ("point", "field"),
        [
            ({"name": "a", "value": 1, "time": "2026-11-01T12:00:00"}, "time"),  # no zone
            ({"name": "a", "value": 1, "time": 1700000000}, "time"),  # not RFC 3339
            ({"name": "a", "value": "x"}, "value"),
            ({"name": "bad name", "value": 1}, "name"),
            ({"name": "a", "value": 1, "extra": 1}, "extra"),
        ],
    )
    async def test_bad_point_is_422_naming_the_field(
        self, client: httpx.AsyncClient, world: World, point: dict[str, object], field: str
    ) -> None:
        r = await client.post(world.path("metrics"), json={"points": [point]}, headers=world.ingest)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "points", 0, field]

    async def test_more_than_100000_points_is_422(
        self, big_client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {"points": [{"name": "a", "value": 1}] * 100_001}
        r = await big_client.post(world.path("metrics"), json=body, headers=world.ingest)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "points"]
        assert await count(session, MetricPoint, product_id=world.product_id) == 0

    async def test_empty_batch_is_422(self, client: httpx.AsyncClient, world: World) -> None:
        r = await client.post(world.path("metrics"), json={"points": []}, headers=world.ingest)
        assert r.status_code == 422


class TestAccess:
    async def test_unknown_product_is_404(self, client: httpx.AsyncClient, world: World) -> None:
        r = await client.post(
            "/v1/products/nope/signals/metrics",
            json={"points": [{"name": "a", "value": 1}]},
            headers=world.ingest,
        )
        assert r.status_code == 404
        assert r.json()["title"] == "ProductNotFound"

    async def test_read_key_is_403(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        token = await create_key(session, scopes=[Scope.read], team=await team_of(session, world))
        r = await client.post(
            world.path("metrics"),
            json={"points": [{"name": "a", "value": 1}]},
            headers=bearer(token),
        )
        assert r.status_code == 403

    async def test_missing_key_is_401(self, client: httpx.AsyncClient, world: World) -> None:
        r = await client.post(world.path("metrics"), json={"points": [{"name": "a", "value": 1}]})
        assert r.status_code == 401

    async def test_other_teams_key_gets_404(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        other = await create_team(session)
        token = await create_key(session, scopes=[Scope.ingest], team=other)
        r = await client.post(
            world.path("metrics"),
            json={"points": [{"name": "a", "value": 1}]},
            headers=bearer(token),
        )
        assert r.status_code == 404
        assert await count(session, MetricPoint, product_id=world.product_id) == 0

    async def test_org_wide_ingest_key_may_ingest_for_any_product(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        token = await create_key(session, scopes=[Scope.ingest])
        other_product = await create_product(session, team=await create_team(session))
        for name in (world.product_name, other_product.name):
            r = await client.post(
                f"/v1/products/{name}/signals/metrics",
                json={"points": [{"name": "a", "value": 1}]},
                headers=bearer(token),
            )
            assert r.status_code == 200, r.text

    async def test_admin_key_may_ingest(self, admin: httpx.AsyncClient, world: World) -> None:
        r = await admin.post(world.path("metrics"), json={"points": [{"name": "a", "value": 1}]})
        assert r.status_code == 200
