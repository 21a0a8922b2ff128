"""Edge inputs of the ingestion endpoints, the alert webhooks and the decision filters.

Times outside the shared range, times without a zone, NUL characters (which PostgreSQL cannot
store) and numbers whose error overflows are all a 422 naming the field, never a 500. The webhook
strips NUL instead (a 4xx would drop the alert for good). Runs on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth import service as auth_service
from retrigger.auth.schemas import ApiKeyCreate
from retrigger.auth.scopes import SYSTEM, Scope
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.main import create_app
from retrigger.products.models import Product
from retrigger.signals.models import Alert, MetricPoint, Outcome
from retrigger.teams.models import Team
from tests.fixtures.db import FreshDatabase
from tests.signals.conftest import World, count

pytestmark = pytest.mark.asyncio(loop_scope="session")

OVERFLOWING = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"]
OUT_OF_RANGE = [*OVERFLOWING, "1969-12-31T23:59:59Z"]
NAIVE = "2026-01-01T00:00:00"
FIRING: dict[str, Any] = json.loads(
    (Path(__file__).parent / "fixtures" / "alertmanager-payload.json").read_text()
)
AM = "/v1/webhooks/alertmanager?product_label=model_name"


def recent() -> str:
    return (datetime.now(UTC) - timedelta(minutes=1)).isoformat()


def assert_422(r: httpx.Response, loc: list[str | int], type_: str | None = None) -> None:
    """A problem+json 422 whose errors name ``loc`` (with the ``body``/``query`` prefix)."""
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    errors = r.json()["errors"]
    assert loc in [e["loc"] for e in errors], errors
    if type_ is not None:
        assert type_ in [e["type"] for e in errors if e["loc"] == loc], errors


def alert_payload(product: str, **alert: Any) -> dict[str, Any]:
    payload = copy.deepcopy(FIRING)
    payload["alerts"][0]["labels"]["model_name"] = product
    payload["alerts"][0].update(alert)
    return payload


class TestTimes:
    @pytest.mark.parametrize("when", [*OUT_OF_RANGE, NAIVE, 1_700_000_000])
    async def test_metric_point_time(
        self, client: httpx.AsyncClient, world: World, when: Any
    ) -> None:
        body = {
            "points": [{"name": "acc", "value": 1.0}, {"name": "acc", "value": 1, "time": when}]
        }
        r = await client.post(world.path("metrics"), json=body, headers=world.ingest)
        assert_422(r, ["body", "points", 1, "time"])
        assert r.json()["detail"].startswith("invalid request: points[1].time: ")

    @pytest.mark.parametrize("when", [*OVERFLOWING, NAIVE])
    async def test_sample_time(self, client: httpx.AsyncClient, world: World, when: str) -> None:
        body = {"rows": [{"amount": 1.0}], "time": when}
        r = await client.post(world.path("samples"), json=body, headers=world.ingest)
        assert_422(r, ["body", "time"])

    @pytest.mark.parametrize("when", [*OVERFLOWING, NAIVE])
    @pytest.mark.parametrize("field", ["predicted_at", "labelled_at"])
    async def test_outcome_times(
        self, client: httpx.AsyncClient, world: World, when: str, field: str
    ) -> None:
        body = {"outcomes": [{"prediction_id": "a", "prediction": 1, field: when}]}
        r = await client.post(world.path("outcomes"), json=body, headers=world.ingest)
        assert_422(r, ["body", "outcomes", 0, field])

    async def test_range_bounds_themselves_are_accepted(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {"points": [{"name": "acc", "value": 1, "time": "1970-01-01T01:00:00+01:00"}]}
        r = await client.post(world.path("metrics"), json=body, headers=world.ingest)
        assert r.status_code == 200, r.text
        stored = await session.scalar(
            select(MetricPoint.event_time).where(MetricPoint.product_id == world.product_id)
        )
        assert stored == datetime(1970, 1, 1, tzinfo=UTC)

    @pytest.mark.parametrize(
        ("field", "when"),
        [
            ("startsAt", OVERFLOWING[0]),
            ("startsAt", OVERFLOWING[1]),
            ("startsAt", NAIVE),
            ("endsAt", OVERFLOWING[1]),  # a year-1 end is Go's zero time: "not ended"
            ("endsAt", NAIVE),
        ],
    )
    async def test_alert_times_are_a_permanent_4xx(
        self, client: httpx.AsyncClient, world: World, field: str, when: str
    ) -> None:
        # Alertmanager retries a 5xx forever; a 4xx tells it no retry can succeed
        payload = alert_payload(world.product_name, **{field: when})
        r = await client.post(AM, json=payload, headers=world.ingest)
        assert_422(r, ["body", "alerts", 0, field])

    async def test_go_zero_end_time_still_means_not_ended(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        payload = alert_payload(world.product_name, endsAt="0001-01-01T00:00:00Z")
        r = await client.post(AM, json=payload, headers=world.ingest)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1
        ends = await session.scalar(
            select(Alert.ends_at).where(Alert.product_id == world.product_id)
        )
        assert ends is None

    @pytest.mark.parametrize("name", ["since", "until"])
    @pytest.mark.parametrize("when", [*OVERFLOWING, NAIVE])
    async def test_decision_filters(self, admin: httpx.AsyncClient, name: str, when: str) -> None:
        r = await admin.get("/v1/decisions", params={name: when})
        assert_422(r, ["query", name])
        assert r.json()["detail"].startswith(f"invalid request: query.{name}: ")

    async def test_decision_filters_take_open_ends(self, admin: httpx.AsyncClient) -> None:
        params = {"since": "1970-01-01T00:00:00Z", "until": "9999-12-31T23:59:59Z"}
        r = await admin.get("/v1/decisions", params=params)
        assert r.status_code == 200, r.text
        assert r.json()["items"] == []


class TestNulCharacters:
    @pytest.mark.parametrize(
        ("point", "loc"),
        [
            ({"model_version": "v\x001"}, ["points", 0, "model_version"]),
            ({"labels": {"region": "eu\x00"}}, ["points", 0, "labels", "region"]),
        ],
    )
    async def test_metric_points(
        self, client: httpx.AsyncClient, world: World, point: dict[str, Any], loc: list[Any]
    ) -> None:
        body = {"points": [{"name": "acc", "value": 1.0, **point}]}
        r = await client.post(world.path("metrics"), json=body, headers=world.ingest)
        assert_422(r, ["body", *loc], "nul_character")

    @pytest.mark.parametrize(
        ("body", "loc"),
        [
            ({"rows": [{"country": "DE"}, {"country": "F\x00R"}]}, ["rows", 1, "country"]),
            ({"columns": {"country": ["DE", "\x00"]}}, ["columns", "country", 1]),
            ({"rows": [{"amount": 1}], "model_version": "\x00"}, ["model_version"]),
        ],
    )
    async def test_samples(
        self,
        client: httpx.AsyncClient,
        world: World,
        session: AsyncSession,
        body: dict[str, Any],
        loc: list[Any],
    ) -> None:
        r = await client.post(world.path("samples"), json=body, headers=world.ingest)
        assert_422(r, ["body", *loc], "nul_character")

    @pytest.mark.parametrize(
        ("outcome", "loc"),
        [
            ({"prediction_id": "a\x00", "prediction": 1}, "prediction_id"),
            ({"prediction_id": "a", "prediction": "cat\x00"}, "prediction"),
            ({"prediction_id": "a", "label": "\x00dog"}, "label"),
            ({"prediction_id": "a", "prediction": 1, "model_version": "\x00"}, "model_version"),
        ],
    )
    async def test_outcomes(
        self,
        client: httpx.AsyncClient,
        world: World,
        session: AsyncSession,
        outcome: dict[str, Any],
        loc: str,
    ) -> None:
        r = await client.post(
            world.path("outcomes"), json={"outcomes": [outcome]}, headers=world.ingest
        )
        assert_422(r, ["body", "outcomes", 0, loc], "nul_character")
        assert await count(session, Outcome, product_id=world.product_id) == 0

    async def test_webhook_strips_it_and_keeps_the_alert(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        payload = alert_payload(world.product_name)
        payload["alerts"][0]["labels"]["team\x00"] = "ml\x00ops"
        payload["alerts"][0]["annotations"]["summary"] = "drift\x00 high"
        payload["groupKey"] = "{}:\x00"
        r = await client.post(AM, json=payload, headers=world.ingest)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 1
        alert = (
            await session.execute(select(Alert).where(Alert.product_id == world.product_id))
        ).scalar_one()
        assert alert.labels["team"] == "mlops"
        assert alert.annotations["summary"] == "drift high"
        assert alert.group_key == "{}:"


class TestOutcomeNumbers:
    @pytest.mark.parametrize(
        ("outcome", "loc"),
        [
            ({"prediction": 1e308, "label": -1e308}, "prediction"),
            ({"prediction": 1.0, "label": -1.5e307}, "label"),
            ({"prediction": 10**400, "label": 1}, "prediction"),
        ],
    )
    async def test_errors_that_would_overflow_are_refused(
        self,
        client: httpx.AsyncClient,
        world: World,
        session: AsyncSession,
        outcome: dict[str, Any],
        loc: str,
    ) -> None:
        good = [{"prediction_id": f"ok-{i}", "prediction": 1.0, "label": 1.0} for i in range(3)]
        body = {"outcomes": [*good, {"prediction_id": "big", **outcome}], "task": "regression"}
        r = await client.post(world.path("outcomes"), json=body, headers=world.ingest)
        assert_422(r, ["body", "outcomes", 3, loc], "number_range")
        assert r.json()["detail"].startswith(f"invalid request: outcomes[3].{loc}: ")
        assert await count(session, Outcome, product_id=world.product_id) == 0

    async def test_largest_accepted_numbers_give_a_finite_error(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {
            "outcomes": [{"prediction_id": "edge", "prediction": 1e307, "label": -1e307}],
            "task": "regression",
        }
        r = await client.post(world.path("outcomes"), json=body, headers=world.ingest)
        assert r.status_code == 200, r.text
        error = await session.scalar(
            select(Outcome.error).where(Outcome.product_id == world.product_id)
        )
        assert error == pytest.approx(2e307)

    async def test_a_wrong_type_is_one_error(self, client: httpx.AsyncClient, world: World) -> None:
        body = {"outcomes": [{"prediction_id": "a", "prediction": [1]}]}
        r = await client.post(world.path("outcomes"), json=body, headers=world.ingest)
        assert_422(r, ["body", "outcomes", 0, "prediction"], "outcome_type")
        assert len(r.json()["errors"]) == 1


class TestErrorNames:
    async def test_validation_detail_names_fields_like_the_docs(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        points = [{"name": "acc", "value": 1.0} for _ in range(3)]
        points.append({"name": "acc", "value": "high"})
        r = await client.post(world.path("metrics"), json={"points": points}, headers=world.ingest)
        assert_422(r, ["body", "points", 3, "value"])
        assert r.json()["detail"].startswith("invalid request: points[3].value: ")

    async def test_samples_report_unknown_features_and_wrong_kinds_together(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        body = {"rows": [{"amount": "x", "country": "DE", "foo": 1}]}
        r = await client.post(world.path("samples"), json=body, headers=world.ingest)
        assert r.status_code == 422, r.text
        assert [(e["loc"], e["type"]) for e in r.json()["errors"]] == [
            (["body", "rows", 0, "foo"], "unknown_feature"),
            (["body", "rows", 0, "amount"], "wrong_kind"),
        ]
        assert r.json()["detail"] == "samples rejected: rows[0].foo: unknown feature (and 1 more)"

    async def test_columns_report_every_problem_together(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        body = {"columns": {"amount": [1.0, True], "bar": [1, 2], "tenure": [1.0]}}
        r = await client.post(world.path("samples"), json=body, headers=world.ingest)
        assert r.status_code == 422, r.text
        assert {(tuple(e["loc"]), e["type"]) for e in r.json()["errors"]} == {
            ("body", "columns", "bar"): "unknown_feature",
            ("body", "columns", "tenure"): "length_mismatch",
            ("body", "columns", "amount", 1): "wrong_kind",
        }.items()


@dataclass
class Live:
    """An app on its own PostgreSQL database with committed data: the metrics lane serves."""

    http: httpx.AsyncClient
    db: Database
    product_id: int
    ingest: dict[str, str]
    admin: dict[str, str]

    async def points(self) -> int:
        async with self.db.session_scope() as session:
            stmt = select(func.count()).where(MetricPoint.product_id == self.product_id)
            return int((await session.execute(stmt)).scalar_one())


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Live]:
    async with FreshDatabase("postgresql", tmp_path_factory.mktemp("edge")) as url:
        settings = Settings(database_url=url, background_evaluation=False)
        db = Database.from_settings(settings)
        await migrate.upgrade(db.engine)
        tokens: dict[str, str] = {}
        async with db.session_scope() as session:
            team = Team(name="ml", description="")
            session.add(team)
            await session.flush()
            product = Product(name="p", team_id=team.id, description="", tags=[], features=[])
            session.add(product)
            await session.flush()
            product_id = product.id
            for role, scopes in (("ingest", [Scope.ingest]), ("admin", [Scope.admin])):
                _, tokens[role] = await auth_service.create(
                    session,
                    principal=SYSTEM,
                    key_in=ApiKeyCreate(name=role, team="ml", scopes=scopes),
                )
        app = create_app(settings, database=db)
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            yield Live(
                http,
                db,
                product_id,
                {"Authorization": f"Bearer {tokens['ingest']}"},
                {"Authorization": f"Bearer {tokens['admin']}"},
            )
        await app.state.lane_pool.close()
        await db.dispose()


class TestOnPostgresql:
    """What SQLite would store, PostgreSQL refuses: both answer the same 422 (or 200)."""

    @pytest.mark.parametrize(
        ("point", "loc"),
        [
            ({"labels": {"region": "eu\x00"}}, ["labels", "region"]),
            ({"model_version": "\x00"}, ["model_version"]),
            ({"time": "0001-01-01T00:00:00+01:00"}, ["time"]),
            ({"time": "2026-01-01T00:00:00"}, ["time"]),
        ],
    )
    async def test_single_metric_posts(
        self, live: Live, point: dict[str, Any], loc: list[Any]
    ) -> None:
        path = "/v1/products/p/signals/metrics"
        ok = await live.http.post(
            path, json={"points": [{"name": "a", "value": 1}]}, headers=live.ingest
        )
        assert ok.status_code == 200, ok.text  # warms the lane's key and product caches
        before = await live.points()
        body = {"points": [{"name": "a", "value": 1, **point}]}
        r = await live.http.post(path, json=body, headers=live.ingest)
        assert_422(r, ["body", "points", 0, *loc])
        assert await live.points() == before

    async def test_a_nul_no_model_refuses_is_still_a_422_naming_it(self, live: Live) -> None:
        # product descriptions are not checked by their model: PostgreSQL refuses the insert
        body = {"name": "nul-product", "description": "fraud\x00 scorer"}
        r = await live.http.post("/v1/products", json=body, headers=live.admin)
        if r.status_code == 201:  # pragma: no cover - SQLite-only behaviour, not this database
            pytest.fail("PostgreSQL stored a NUL character")
        assert_422(r, ["body", "description"], "nul_character")
        assert r.json()["detail"].startswith("invalid request: description: ")
