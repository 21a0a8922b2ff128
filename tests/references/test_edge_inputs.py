"""Reference uploads at the edges: empty baselines, overflowing profiles, NUL, bad times, races.

Each bad upload is a 422 naming ``profiles.<feature>...`` (or the field), never a 500, and never
replaces the active baseline. Concurrent uploads to one product all succeed (PostgreSQL).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth import service as auth_service
from retrigger.auth.schemas import ApiKeyCreate
from retrigger.auth.scopes import SYSTEM, Scope
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.main import create_app
from retrigger.products.models import Product
from retrigger.teams.models import Team
from tests.fixtures.db import FreshDatabase
from tests.fixtures.factories import create_key, create_product, create_team

pytestmark = pytest.mark.asyncio(loop_scope="session")

FEATURES: list[dict[str, Any]] = [
    {"name": "amount", "kind": "numeric"},
    {"name": "country", "kind": "categorical"},
]
GOOD = {"profiles": {"amount": {"histogram": {"edges": [0, 1, 2], "counts": [5, 5]}}}}


@dataclass
class Ref:
    http: httpx.AsyncClient
    path: str
    auth: dict[str, str]

    async def upload(self, body: dict[str, Any]) -> httpx.Response:
        return await self.http.post(self.path, json=body, headers=self.auth)

    async def versions(self) -> list[tuple[int, bool]]:
        r = await self.http.get(self.path, headers=self.auth)
        assert r.status_code == 200, r.text
        return [(item["version"], item["active"]) for item in r.json()]


@pytest_asyncio.fixture(loop_scope="session")
async def ref(client: httpx.AsyncClient, session: AsyncSession) -> Ref:
    team = await create_team(session)
    product = await create_product(session, team=team, features=FEATURES)
    token = await create_key(session, scopes=[Scope.write], team=team)
    return Ref(
        client, f"/v1/products/{product.name}/references", {"Authorization": f"Bearer {token}"}
    )


def assert_422(r: httpx.Response, loc: list[Any]) -> None:
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert loc in [e["loc"] for e in r.json()["errors"]], r.json()


class TestEmptyOrOverflowing:
    async def test_empty_profiles_are_refused_and_keep_the_active_one(self, ref: Ref) -> None:
        assert (await ref.upload(GOOD)).status_code == 201
        assert_422(await ref.upload({"profiles": {}}), ["body", "profiles"])
        assert await ref.versions() == [(1, True)]

    @pytest.mark.parametrize(
        ("profile", "loc"),
        [
            # the span overflows
            ({"histogram": {"edges": [-1e308, 0, 1e308], "counts": [1, 1]}}, ["histogram"]),
            # the second moment overflows though the span does not
            ({"histogram": {"edges": [0, 1e200, 1.7e200], "counts": [1, 1]}}, ["histogram"]),
            # the count does not fit a reference's row count
            ({"histogram": {"edges": [0, 1], "counts": [1e308]}}, ["histogram"]),
            ({"histogram": {"edges": [0, 1, 2], "counts": [2**31, 0]}}, ["histogram"]),
            (
                {"quantiles": {"probabilities": [0, 1], "values": [0, 1], "n": 2**31}},
                ["quantiles", "n"],
            ),
            (
                {"quantiles": {"probabilities": [0, 1], "values": [-1e308, 1e308], "n": 3}},
                ["quantiles"],
            ),
        ],
    )
    async def test_numeric_profiles(
        self, ref: Ref, profile: dict[str, Any], loc: list[Any]
    ) -> None:
        r = await ref.upload({"profiles": {"amount": profile}})
        assert_422(r, ["body", "profiles", "amount", *loc])
        assert await ref.versions() == []

    async def test_category_counts_that_do_not_fit(self, ref: Ref) -> None:
        counts = {"DE": 2**31 - 1, "FR": 1}
        r = await ref.upload({"profiles": {"country": {"counts": counts}}})
        assert_422(r, ["body", "profiles", "country", "counts"])

    async def test_raw_values_near_the_float_limit(self, ref: Ref) -> None:
        r = await ref.upload({"columns": {"amount": [1e200, 1.5e200, -1e200]}})
        assert_422(r, ["body", "columns", "amount"])


class TestTextAndTime:
    @pytest.mark.parametrize(
        ("extra", "loc"),
        [
            ({"description": "base\x00line"}, ["description"]),
            ({"model_version": "\x00"}, ["model_version"]),
            ({"baseline_metrics": {"acc\x00": 0.9}}, ["baseline_metrics", "acc\x00", "[key]"]),
            ({"trained_at": "0001-01-01T00:00:00+01:00"}, ["trained_at"]),
            ({"trained_at": "9999-12-31T23:59:59-01:00"}, ["trained_at"]),
            ({"trained_at": "2026-01-01T00:00:00"}, ["trained_at"]),
        ],
    )
    async def test_refused_fields(self, ref: Ref, extra: dict[str, Any], loc: list[Any]) -> None:
        assert_422(await ref.upload({**GOOD, **extra}), ["body", *loc])

    async def test_nul_in_category_counts(self, ref: Ref) -> None:
        r = await ref.upload({"profiles": {"country": {"counts": {"D\x00E": 3}}}})
        assert_422(r, ["body", "profiles", "country", "counts", "D\x00E", "[key]"])

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"columns": {"country": ["DE", "F\x00R"]}}, ["columns", "country", 1]),
            ({"rows": [{"country": "DE"}, {"country": "\x00"}]}, ["rows", 1, "country"]),
        ],
    )
    async def test_nul_in_raw_categories(
        self, ref: Ref, body: dict[str, Any], loc: list[Any]
    ) -> None:
        assert_422(await ref.upload(body), ["body", *loc])
        assert await ref.versions() == []


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def committed(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Ref]:
    """An app on its own PostgreSQL database, each request in its own committed transaction."""
    async with FreshDatabase("postgresql", tmp_path_factory.mktemp("refs")) as url:
        settings = Settings(database_url=url, background_evaluation=False)
        db = Database.from_settings(settings)
        await migrate.upgrade(db.engine)
        async with db.session_scope() as session:
            team = Team(name="ml", description="")
            session.add(team)
            await session.flush()
            session.add(
                Product(name="p", team_id=team.id, description="", tags=[], features=FEATURES)
            )
            _, token = await auth_service.create(
                session,
                principal=SYSTEM,
                key_in=ApiKeyCreate(name="w", team="ml", scopes=[Scope.write]),
            )
        app = create_app(settings, database=db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield Ref(http, "/v1/products/p/references", {"Authorization": f"Bearer {token}"})
        await app.state.lane_pool.close()
        await db.dispose()


class TestConcurrentUploads:
    async def test_parallel_uploads_to_one_product_all_succeed(self, committed: Ref) -> None:
        bodies = [{**GOOD, "description": f"upload {i}"} for i in range(6)]
        answers = await asyncio.gather(*(committed.upload(b) for b in bodies))
        assert [r.status_code for r in answers] == [201] * 6, [r.text for r in answers]
        assert sorted(r.json()["version"] for r in answers) == [1, 2, 3, 4, 5, 6]
        versions = await committed.versions()
        assert sorted(v for v, _ in versions) == [1, 2, 3, 4, 5, 6]
        assert sum(active for _, active in versions) == 1
