"""The pure-ASGI metrics lane, on a real PostgreSQL database with committed data.

Which side answered is told by the evaluation notification: the lane calls its own
``notify_ingested``, the route schedules the router's.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from prometheus_client import REGISTRY
from sqlalchemy import func, select, update

from retrigger.api.deps import get_settings
from retrigger.auth import service as auth_service
from retrigger.auth.models import ApiKey
from retrigger.auth.schemas import ApiKeyCreate
from retrigger.auth.scopes import SYSTEM, Scope
from retrigger.auth.tokens import parse_token
from retrigger.config import AuthMode, Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.main import create_app
from retrigger.products.models import Product
from retrigger.signals import fastlane, fastpath
from retrigger.signals import router as signals_router
from retrigger.signals.models import MetricPoint
from retrigger.teams.models import Team
from tests.fixtures.db import FreshDatabase

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROUTE = "/v1/products/{product}/signals/metrics"
ONE = {"points": [{"name": "latency_ms", "value": 12.5}]}


@dataclass
class Lane:
    http: httpx.AsyncClient
    app: FastAPI
    db: Database
    product_id: int
    other_product: str
    tokens: dict[str, str]

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    async def post(
        self, body: Any, role: str | None = "ingest", product: str = "p", **headers: str
    ) -> httpx.Response:
        hdrs = {**(self.auth(role) if role else {}), **headers}
        path = ROUTE.format(product=product)
        if isinstance(body, bytes):
            hdrs.setdefault("Content-Type", "application/json")
            return await self.http.post(path, content=body, headers=hdrs)
        return await self.http.post(path, json=body, headers=hdrs)

    async def count(self, product_id: int | None = None) -> int:
        """Rows of a product, read on another connection: only committed rows count."""
        async with self.db.session_scope() as session:
            stmt = select(func.count()).where(
                MetricPoint.product_id == (product_id or self.product_id)
            )
            return int((await session.execute(stmt)).scalar_one())

    async def add_key(self, scopes: list[Scope], team: str | None = "ml") -> str:
        async with self.db.session_scope() as session:
            _, token = await auth_service.create(
                session,
                principal=SYSTEM,
                key_in=ApiKeyCreate(name="extra", team=team, scopes=scopes),
            )
        return token


@dataclass
class Calls:
    lane: list[int] = field(default_factory=list)
    route: list[int] = field(default_factory=list)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def lane(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Lane]:
    async with FreshDatabase("postgresql", tmp_path_factory.mktemp("lane")) as url:
        settings = Settings(database_url=url, background_evaluation=False)
        db = Database.from_settings(settings)
        await migrate.upgrade(db.engine)
        tokens: dict[str, str] = {}
        async with db.session_scope() as session:
            ml, other = Team(name="ml", description=""), Team(name="other", description="")
            session.add_all([ml, other])
            await session.flush()
            product = Product(name="p", team_id=ml.id, description="", tags=[], features=[])
            theirs = Product(name="q", team_id=other.id, description="", tags=[], features=[])
            session.add_all([product, theirs])
            await session.flush()
            product_id = product.id
            for role, team, scopes in (
                ("ingest", "ml", [Scope.ingest]),
                ("stranger", "other", [Scope.ingest]),
                ("read", "ml", [Scope.read]),
                ("org", None, [Scope.ingest]),
                ("admin", None, [Scope.admin]),
            ):
                _, tokens[role] = await auth_service.create(
                    session,
                    principal=SYSTEM,
                    key_in=ApiKeyCreate(name=role, team=team, scopes=scopes),
                )
        app = create_app(settings, database=db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield Lane(http, app, db, product_id, "q", tokens)
        await app.state.lane_pool.close()
        await db.dispose()


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> Calls:
    """Cold caches, and a record of who answered each stored batch."""
    auth_service.PRINCIPALS.clear()
    fastpath._products.clear()
    recorded = Calls()

    async def by_lane(state: Any, product_id: int) -> None:
        recorded.lane.append(product_id)

    async def by_route(state: Any, product_id: int) -> None:
        recorded.route.append(product_id)

    monkeypatch.setattr(fastlane, "notify_ingested", by_lane)
    monkeypatch.setattr(signals_router, "notify_ingested", by_route)
    return recorded


async def warm(lane: Lane, calls: Calls, role: str = "ingest") -> None:
    """One batch through the route, which caches the key and the product."""
    r = await lane.post(ONE, role)
    assert r.status_code == 200, r.text
    assert calls.lane == []
    calls.route.clear()


class TestLaneAnswers:
    async def test_answers_like_the_route(self, lane: Lane, calls: Calls) -> None:
        before = datetime.now(UTC)
        slow = await lane.post(ONE)
        fast = await lane.post(ONE)
        after = datetime.now(UTC)
        assert (calls.route, calls.lane) == ([lane.product_id], [lane.product_id])
        assert slow.status_code == fast.status_code == 200
        names = {k for k in slow.headers if k != "x-request-id"}
        assert names == {k for k in fast.headers if k != "x-request-id"}
        assert fast.headers["content-type"] == slow.headers["content-type"]
        assert int(fast.headers["content-length"]) == len(fast.content)
        s, f = slow.json(), fast.json()
        assert list(f) == list(s)
        assert {**f, "received_at": None} == {**s, "received_at": None}
        assert before <= datetime.fromisoformat(f["received_at"]) <= after

    async def test_stores_points_in_order_with_their_defaults(
        self, lane: Lane, calls: Calls
    ) -> None:
        await warm(lane, calls)
        t = datetime.now(UTC) - timedelta(minutes=5)
        points = [
            {"name": "b_first", "value": 1, "time": t.isoformat(), "labels": {"seg": "a"}},
            {"name": "a_second", "value": 2.5, "model_version": "v7"},
            {"name": "c_third", "value": -3},
        ]
        r = await lane.post({"points": points})
        assert r.status_code == 200, r.text
        assert calls.lane == [lane.product_id]
        received = datetime.fromisoformat(r.json()["received_at"])
        async with lane.db.session_scope() as session:
            stmt = select(MetricPoint).where(MetricPoint.received_at == received)
            rows = (await session.execute(stmt.order_by(MetricPoint.id))).scalars().all()
        assert [(p.name, p.value) for p in rows] == [
            ("b_first", 1),
            ("a_second", 2.5),
            ("c_third", -3),
        ]
        assert (rows[0].event_time, rows[0].labels) == (t, {"seg": "a"})
        assert (rows[1].event_time, rows[1].model_version) == (received, "v7")
        assert (rows[2].labels, rows[2].model_version) == (None, None)

    async def test_committed_before_the_answer(self, lane: Lane, calls: Calls) -> None:
        await warm(lane, calls)
        before = await lane.count()
        r = await lane.post({"points": [{"name": "m", "value": 1}, {"name": "m", "value": 2}]})
        assert r.status_code == 200
        assert calls.lane == [lane.product_id]
        assert await lane.count() == before + 2

    async def test_request_id_and_metrics_see_the_request(self, lane: Lane, calls: Calls) -> None:
        await warm(lane, calls)
        http = (
            "retrigger_http_requests_total",
            {"method": "POST", "route": ROUTE, "status": "200"},
        )
        points = (
            "retrigger_signals_ingested_total",
            {"kind": "metrics", "product": "p", "outcome": "accepted"},
        )
        before = [REGISTRY.get_sample_value(*sample) or 0.0 for sample in (http, points)]
        r = await lane.post(ONE, **{"X-Request-ID": "lane-test-1"})
        assert calls.lane == [lane.product_id]
        assert r.headers["x-request-id"] == "lane-test-1"
        after = [REGISTRY.get_sample_value(*sample) for sample in (http, points)]
        assert after == [before[0] + 1, before[1] + 1]

    async def test_auth_disabled_needs_no_cached_key(self, lane: Lane, calls: Calls) -> None:
        settings = lane.app.state.settings.model_copy(update={"auth": AuthMode.disabled})
        app = create_app(settings, database=lane.db)
        try:
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                r = await http.post(ROUTE.format(product=lane.other_product), json=ONE)
            assert r.status_code == 200, r.text
            assert (len(calls.lane), calls.route) == (1, [])
        finally:
            await app.state.lane_pool.close()


class TestFallsThrough:
    @pytest.mark.parametrize(
        ("body", "headers", "status", "title"),
        [
            (b'{"points": [', {}, 400, "MalformedJSON"),
            (b'{"points": [{"name": "a", "value": NaN}]}', {}, 422, "ValidationError"),
            ({"points": [{"name": "bad name", "value": 1}]}, {}, 422, "ValidationError"),
            ({"points": []}, {}, 422, "ValidationError"),
            (
                {"points": [{"name": "a", "value": 1, "time": "2099-01-01T00:00:00Z"}]},
                {},
                422,
                "SignalRejected",
            ),
            (ONE, {"Idempotency-Key": "k-1"}, 200, None),
            ({**ONE, "batch_id": "k-2"}, {}, 200, None),
            ({"points": [{"name": "a", "value": i} for i in range(16)]}, {}, 200, None),
            (
                {"points": [{"name": "a" * 200, "value": 1, "labels": {"l": "v" * 1000}}] * 7},
                {},
                200,
                None,
            ),
            (ONE, {"Content-Type": "application/vnd.api+json"}, 200, None),
        ],
        ids=[
            "invalid-json",
            "nan",
            "bad-name",
            "no-points",
            "future-time",
            "idempotency-header",
            "batch-id",
            "16-points",
            "large-body",
            "json-suffix-type",
        ],
    )
    async def test_unusual_requests_get_the_apps_answer(
        self,
        lane: Lane,
        calls: Calls,
        body: Any,
        headers: dict[str, str],
        status: int,
        title: str | None,
    ) -> None:
        await warm(lane, calls)
        if isinstance(body, dict) and "Content-Type" in headers:
            body = json.dumps(body).encode()
        r = await lane.post(body, **headers)
        assert r.status_code == status, r.text
        assert calls.lane == []
        if title is not None:
            assert r.headers["content-type"] == "application/problem+json"
            assert r.json()["title"] == title
        else:
            assert calls.route == [lane.product_id]

    @pytest.mark.parametrize(
        ("headers", "status"),
        [({}, 401), ({"Authorization": "Basic abc"}, 401), ({"Authorization": "Bearer x"}, 401)],
    )
    async def test_missing_or_bad_key_is_401(
        self, lane: Lane, calls: Calls, headers: dict[str, str], status: int
    ) -> None:
        r = await lane.post(ONE, role=None, **headers)
        assert r.status_code == status
        assert r.json()["title"] == "Unauthenticated"

    async def test_unknown_product_is_404(self, lane: Lane, calls: Calls) -> None:
        await warm(lane, calls)
        r = await lane.post(ONE, product="nope")
        assert r.status_code == 404
        assert r.json()["title"] == "ProductNotFound"
        assert calls.lane == []

    async def test_unexpected_error_hands_over(
        self, lane: Lane, calls: Calls, monkeypatch: pytest.MonkeyPatch, caplog: Any
    ) -> None:
        await warm(lane, calls)

        def broken(*args: Any, **kwargs: Any) -> None:
            raise RuntimeError("bug")

        monkeypatch.setattr(fastlane, "check_metric_times", broken)
        with caplog.at_level(logging.ERROR, logger="retrigger.signals"):
            r = await lane.post(ONE)
        assert r.status_code == 200
        assert (calls.lane, calls.route) == ([], [lane.product_id])
        assert "metrics lane" in caplog.text

    async def test_database_refusal_hands_over_and_stores_once(
        self, lane: Lane, calls: Calls, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        await warm(lane, calls)
        real = fastpath.insert_points
        refused: list[bool] = []

        async def refuse_once(*args: Any, **kwargs: Any) -> int | None:
            if not refused:
                refused.append(True)
                raise asyncpg.PostgresError("refused")
            return await real(*args, **kwargs)

        monkeypatch.setattr(fastpath, "insert_points", refuse_once)
        before = await lane.count()
        r = await lane.post(ONE)
        assert r.status_code == 200
        assert (calls.lane, calls.route) == ([], [lane.product_id])
        assert await lane.count() == before + 1

    async def test_overridden_dependencies_keep_the_route(self, lane: Lane, calls: Calls) -> None:
        await warm(lane, calls)

        async def settings() -> Settings:
            return lane.app.state.settings  # type: ignore[no-any-return]

        lane.app.dependency_overrides[get_settings] = settings
        try:
            r = await lane.post(ONE)
        finally:
            lane.app.dependency_overrides.clear()
        assert r.status_code == 200
        assert (calls.lane, calls.route) == ([], [lane.product_id])


class TestAccess:
    async def test_other_teams_product_is_404_and_stores_nothing(
        self, lane: Lane, calls: Calls
    ) -> None:
        before = await lane.count()
        for _ in range(2):  # the second time the stranger's key is cached
            r = await lane.post(ONE, "stranger")
            assert r.status_code == 404
            assert r.json()["title"] == "ProductNotFound"
        assert calls.lane == calls.route == []
        assert await lane.count() == before

    async def test_org_wide_key_ingests_for_every_team(self, lane: Lane, calls: Calls) -> None:
        for product in ("p", lane.other_product):
            r = await lane.post(ONE, "org", product=product)
            assert r.status_code == 200, r.text
        # the key was cached by the first batch; the lane needs no cached product
        assert calls.route == [lane.product_id]
        assert len(calls.lane) == 1
        assert calls.lane != calls.route

    async def test_key_without_ingest_scope_is_403(self, lane: Lane, calls: Calls) -> None:
        for _ in range(2):
            r = await lane.post(ONE, "read")
            assert r.status_code == 403
        assert calls.lane == []

    async def test_revoked_in_this_process_is_refused_at_once(
        self, lane: Lane, calls: Calls
    ) -> None:
        token = await lane.add_key([Scope.ingest])
        headers = {"Authorization": f"Bearer {token}"}
        for _ in range(2):
            assert (await lane.post(ONE, role=None, **headers)).status_code == 200
        assert len(calls.lane) == 1
        parsed = parse_token(token)
        assert parsed is not None
        r = await lane.http.delete(f"/v1/api-keys/{parsed.key_id}", headers=lane.auth("admin"))
        assert r.status_code == 204
        r = await lane.post(ONE, role=None, **headers)
        assert r.status_code == 401
        assert r.json()["detail"] == "API key revoked"

    async def test_revoked_elsewhere_is_refused_after_the_cache_window(
        self, lane: Lane, calls: Calls, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        token = await lane.add_key([Scope.ingest])
        headers = {"Authorization": f"Bearer {token}"}
        assert (await lane.post(ONE, role=None, **headers)).status_code == 200
        parsed = parse_token(token)
        assert parsed is not None
        async with lane.db.session_scope() as session:  # as another process revokes it
            await session.execute(
                update(ApiKey)
                .where(ApiKey.key_id == parsed.key_id)
                .values(revoked_at=datetime.now(UTC))
            )
        r = await lane.post(ONE, role=None, **headers)
        assert r.status_code == 200  # documented: other processes within the cache's TTL
        assert len(calls.lane) == 1

        class Later:
            @staticmethod
            def monotonic() -> float:
                return time.monotonic() + auth_service._PrincipalCache.TTL + 1

        monkeypatch.setattr(auth_service, "time", Later)
        r = await lane.post(ONE, role=None, **headers)
        assert r.status_code == 401
        assert len(calls.lane) == 1

    async def test_deleted_product_is_404(self, lane: Lane, calls: Calls) -> None:
        async with lane.db.session_scope() as session:
            team = (await session.execute(select(Team).where(Team.name == "ml"))).scalar_one()
            session.add(
                Product(name="doomed", team_id=team.id, description="", tags=[], features=[])
            )
        for _ in range(2):
            assert (await lane.post(ONE, product="doomed")).status_code == 200
        assert len(calls.lane) == 1
        r = await lane.http.delete("/v1/products/doomed", headers=lane.auth("admin"))
        assert r.status_code == 204
        r = await lane.post(ONE, product="doomed")
        assert r.status_code == 404
        assert len(calls.lane) == 1


class TestSQLite:
    async def test_the_route_answers_on_sqlite(self, tmp_path: Path, calls: Calls) -> None:
        async with FreshDatabase("sqlite", tmp_path) as url:
            settings = Settings(database_url=url, background_evaluation=False)
            db = Database.from_settings(settings)
            await migrate.upgrade(db.engine)
            async with db.session_scope() as session:
                team = Team(name="ml", description="")
                session.add(team)
                await session.flush()
                session.add(
                    Product(name="p", team_id=team.id, description="", tags=[], features=[])
                )
                _, token = await auth_service.create(
                    session,
                    principal=SYSTEM,
                    key_in=ApiKeyCreate(name="k", team="ml", scopes=[Scope.ingest]),
                )
            app = create_app(settings, database=db)
            transport = httpx.ASGITransport(app=app)
            try:
                async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                    for _ in range(2):
                        r = await http.post(
                            ROUTE.format(product="p"),
                            json=ONE,
                            headers={"Authorization": f"Bearer {token}"},
                        )
                        assert r.status_code == 200, r.text
            finally:
                await db.dispose()
        assert (calls.lane, len(calls.route)) == ([], 2)
