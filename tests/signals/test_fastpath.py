"""The small-batch metrics fast path, on a real PostgreSQL database with committed data."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, select

from retrigger.auth import service as auth_service
from retrigger.auth.schemas import ApiKeyCreate
from retrigger.auth.scopes import SYSTEM, Scope
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.main import create_app
from retrigger.products.models import Product
from retrigger.signals import readers
from retrigger.teams.models import Team
from tests.fixtures.db import FreshDatabase

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def live(tmp_path: Path) -> AsyncIterator[tuple[httpx.AsyncClient, Database, int]]:
    async with FreshDatabase("postgresql", tmp_path) as url:
        settings = Settings(database_url=url, background_evaluation=False)
        db = Database.from_settings(settings)
        await migrate.upgrade(db.engine)
        async with db.session_scope() as session:
            team = Team(name="ml", description="")
            session.add(team)
            await session.flush()
            product = Product(name="p", team_id=team.id, description="", tags=[], features=[])
            session.add(product)
            await session.flush()
            product_id = product.id
            other = Team(name="other", description="")
            session.add(other)
            await session.flush()
            _, token = await auth_service.create(
                session,
                principal=SYSTEM,
                key_in=ApiKeyCreate(name="k", team="ml", scopes=[Scope.ingest]),
            )
            _, stranger = await auth_service.create(
                session,
                principal=SYSTEM,
                key_in=ApiKeyCreate(name="s", team="other", scopes=[Scope.ingest]),
            )
        app = create_app(settings, database=db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            http.headers["Authorization"] = f"Bearer {token}"
            http.headers["X-Stranger"] = stranger
            yield http, db, product_id
        await app.state.lane_pool.close()
        await db.dispose()


class TestMetricsFastPath:
    async def test_small_batches_are_committed_and_readable(
        self, live: tuple[httpx.AsyncClient, Database, int]
    ) -> None:
        http, db, product_id = live
        t = datetime.now(UTC) - timedelta(minutes=1)
        points = [
            {"name": "accuracy", "value": 0.9, "time": t.isoformat(), "labels": {"seg": "a"}},
            {"name": "accuracy", "value": 0.8, "model_version": "v2"},
        ]
        for _ in range(2):  # the second request finds the product in the cache
            r = await http.post("/v1/products/p/signals/metrics", json={"points": points})
            assert r.status_code == 200, r.text
            assert r.json()["accepted"] == 2
        async with db.session_scope() as session:
            series = await readers.read_metric(
                session,
                product_id=product_id,
                name="accuracy",
                since=None,
                until=None,
                last_rows=None,
            )
        assert sorted(series.values.tolist()) == [0.8, 0.8, 0.9, 0.9]
        assert {"seg": "a"} in series.labels
        assert "v2" in series.model_versions

    async def test_future_time_is_422_and_writes_nothing(
        self, live: tuple[httpx.AsyncClient, Database, int]
    ) -> None:
        http, db, product_id = live
        future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
        points = [{"name": "m", "value": 1.0}, {"name": "m", "value": 2.0, "time": future}]
        r = await http.post("/v1/products/p/signals/metrics", json={"points": points})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "points", 1, "time"]
        async with db.session_scope() as session:
            series = await readers.read_metric(
                session, product_id=product_id, name="m", since=None, until=None, last_rows=None
            )
        assert series.n == 0

    async def test_other_team_and_unknown_product_are_404(
        self, live: tuple[httpx.AsyncClient, Database, int]
    ) -> None:
        http, _, _ = live
        body = {"points": [{"name": "m", "value": 1.0}]}
        assert (await http.post("/v1/products/p/signals/metrics", json=body)).status_code == 200
        stranger = {"Authorization": f"Bearer {http.headers['X-Stranger']}"}
        r = await http.post("/v1/products/p/signals/metrics", json=body, headers=stranger)
        assert r.status_code == 404  # even though "p" is in the product cache
        r = await http.post("/v1/products/nope/signals/metrics", json=body)
        assert r.status_code == 404

    async def test_product_deleted_while_cached_is_404(
        self, live: tuple[httpx.AsyncClient, Database, int]
    ) -> None:
        http, db, _ = live
        async with db.session_scope() as session:
            team = (await session.execute(select(Team).where(Team.name == "ml"))).scalar_one()
            session.add(Product(name="gone", team_id=team.id, description="", tags=[], features=[]))
        body = {"points": [{"name": "m", "value": 1.0}]}
        r = await http.post("/v1/products/gone/signals/metrics", json=body)
        assert r.status_code == 200  # "gone" is now in the product cache
        async with db.session_scope() as session:
            await session.execute(delete(Product).where(Product.name == "gone"))
        for _ in range(2):  # the stale entry is dropped: a 404 each time, not a database error
            r = await http.post("/v1/products/gone/signals/metrics", json=body)
            assert r.status_code == 404
            assert r.json()["title"] == "ProductNotFound"
