"""The metrics lane marks its product for evaluation in its one autocommitted statement, as the
general path does in its transaction (PostgreSQL: the lane exists only there)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import delete, func, select, update

from retrigger.auth import service as auth_service
from retrigger.auth.schemas import ApiKeyCreate
from retrigger.auth.scopes import SYSTEM, Scope
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.decisions.models import ProductState
from retrigger.main import create_app
from retrigger.products.models import Product
from retrigger.signals import fastlane, fastpath
from retrigger.signals.models import MetricPoint
from retrigger.teams.models import Team
from tests.fixtures.db import FreshDatabase

pytestmark = pytest.mark.asyncio(loop_scope="session")

ONE = {"points": [{"name": "latency_ms", "value": 12.5}]}


@dataclass
class Lane:
    http: httpx.AsyncClient
    db: Database
    product_id: int
    token: str
    answered: list[int]

    async def post(self) -> datetime:
        """One point; the time it was received (checked: the lane answered)."""
        before = len(self.answered)
        r = await self.http.post(
            "/v1/products/p/signals/metrics",
            json=ONE,
            headers={"Authorization": f"Bearer {self.token}"},
        )
        assert r.status_code == 200, r.text
        assert self.answered[before:] == [self.product_id]
        return datetime.fromisoformat(r.json()["received_at"])

    async def state(self) -> list[datetime | None]:
        """The product's state rows' marks (none, or one)."""
        async with self.db.read_scope() as session:
            stmt = select(ProductState.dirty_since).where(
                ProductState.product_id == self.product_id
            )
            return list((await session.execute(stmt)).scalars().all())

    async def write_state(self, stmt: Any) -> None:
        async with self.db.session_scope() as session:
            await session.execute(stmt)


@pytest_asyncio.fixture(loop_scope="session")
async def lane(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Lane]:
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
            _, token = await auth_service.create(
                session,
                principal=SYSTEM,
                key_in=ApiKeyCreate(name="ingest", team="ml", scopes=[Scope.ingest]),
            )
        auth_service.PRINCIPALS.clear()
        fastpath._products.clear()
        answered: list[int] = []

        async def by_lane(state: Any, product_id: int) -> None:
            answered.append(product_id)

        monkeypatch.setattr(fastlane, "notify_ingested", by_lane)
        app = create_app(settings, database=db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            # the route answers the first batch and caches the key; the lane takes the rest
            r = await http.post(
                "/v1/products/p/signals/metrics",
                json=ONE,
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200, r.text
            assert answered == []
            yield Lane(http, db, product_id, token, answered)
        await app.state.lane_pool.close()
        await db.dispose()


class TestLaneMarks:
    async def test_a_product_without_state_gets_a_marked_row(self, lane: Lane) -> None:
        await lane.write_state(
            delete(ProductState).where(ProductState.product_id == lane.product_id)
        )
        received = await lane.post()
        assert await lane.state() == [received]

    async def test_a_clean_product_is_marked(self, lane: Lane) -> None:
        await lane.post()
        await lane.write_state(
            update(ProductState)
            .where(ProductState.product_id == lane.product_id)
            .values(dirty_since=None)
        )
        received = await lane.post()
        assert await lane.state() == [received]

    async def test_a_marked_product_keeps_its_first_time(self, lane: Lane) -> None:
        first = await lane.post()
        async with lane.db.read_scope() as session:
            stmt = select(ProductState.dirty_since).where(
                ProductState.product_id == lane.product_id
            )
            marked = (await session.execute(stmt)).scalar_one()
        assert marked is not None
        assert marked <= first
        await lane.post()
        assert await lane.state() == [marked]

    async def test_the_points_are_stored_once(self, lane: Lane) -> None:
        async with lane.db.read_scope() as session:
            before = (await session.execute(select(func.count(MetricPoint.id)))).scalar_one()
        await lane.post()
        async with lane.db.read_scope() as session:
            after = (await session.execute(select(func.count(MetricPoint.id)))).scalar_one()
        assert after == before + 1
