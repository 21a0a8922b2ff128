"""Outcomes over HTTP: predictions, late labels joining by prediction id, errors."""

from __future__ import annotations

from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.signals.models import Outcome
from tests.signals.conftest import World, count

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def outcome(session: AsyncSession, world: World, prediction_id: str) -> Outcome:
    stmt = select(Outcome).where(
        Outcome.product_id == world.product_id, Outcome.prediction_id == prediction_id
    )
    session.expire_all()
    return (await session.execute(stmt)).scalar_one()


class TestLateLabels:
    async def test_label_sent_later_joins_its_prediction(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        predictions = {
            "outcomes": [
                {
                    "prediction_id": "p1",
                    "prediction": 1,
                    "score": 0.9,
                    "predicted_at": "2026-11-01T10:00:00Z",
                    "model_version": "v3",
                },
                {"prediction_id": "p2", "prediction": 0, "score": 0.2},
            ],
            "task": "classification",
        }
        r = await client.post(world.path("outcomes"), json=predictions, headers=world.ingest)
        assert r.status_code == 200, r.text
        assert r.json() | {"received_at": None} == {
            "accepted": 2,
            "duplicate": False,
            "batch_id": None,
            "received_at": None,
            "inserted": 2,
            "updated": 0,
            "joined": 0,
        }
        row = await outcome(session, world, "p1")
        assert (row.prediction, row.label, row.error, row.joined_at) == (1, None, None, None)
        assert row.event_time == datetime(2026, 11, 1, 10, tzinfo=UTC)

        labels = {
            "outcomes": [
                {"prediction_id": "p1", "label": 0, "labelled_at": "2026-11-03T08:00:00Z"},
                {"prediction_id": "p2", "label": 0},
                {"prediction_id": "p3", "label": 1},  # label before its prediction
            ],
            "task": "classification",
        }
        r = await client.post(world.path("outcomes"), json=labels, headers=world.ingest)
        assert r.status_code == 200, r.text
        assert (r.json()["inserted"], r.json()["updated"], r.json()["joined"]) == (1, 2, 2)
        p1 = await outcome(session, world, "p1")
        assert (p1.prediction, p1.label, p1.score, p1.error) == (1, 0, 0.9, 1.0)
        assert p1.model_version == "v3"
        assert p1.joined_at is not None
        assert p1.labelled_at == datetime(2026, 11, 3, 8, tzinfo=UTC)
        assert p1.event_time == datetime(2026, 11, 1, 10, tzinfo=UTC)  # still prediction time
        assert p1.detector_processed is False
        assert (await outcome(session, world, "p2")).error == 0.0
        p3 = await outcome(session, world, "p3")
        assert (p3.prediction, p3.label, p3.joined_at) == (None, 1, None)

    async def test_regression_error_is_absolute(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {
            "outcomes": [
                {"prediction_id": "r1", "prediction": 10.5, "label": 12.0},
                {"prediction_id": "r2", "prediction": 3, "label": 1},
            ]
        }
        r = await client.post(world.path("outcomes"), json=body, headers=world.ingest)
        assert r.status_code == 200, r.text
        assert r.json()["joined"] == 2
        assert (await outcome(session, world, "r1")).error == 1.5
        assert (await outcome(session, world, "r2")).error == 2.0

    async def test_string_classes_compare_by_label(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {
            "outcomes": [
                {"prediction_id": "c1", "prediction": "fraud", "label": "fraud"},
                {"prediction_id": "c2", "prediction": True, "label": False},
                {"prediction_id": "c3", "prediction": 2, "label": 2.0},
            ],
            "task": "classification",
        }
        r = await client.post(world.path("outcomes"), json=body, headers=world.ingest)
        assert r.status_code == 200, r.text
        errors = [(await outcome(session, world, p)).error for p in ("c1", "c2", "c3")]
        assert errors == [0.0, 1.0, 0.0]

    async def test_repeated_id_in_one_batch_merges(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {
            "outcomes": [
                {"prediction_id": "m1", "prediction": "a"},
                {"prediction_id": "m1", "label": "b"},
            ]
        }
        r = await client.post(world.path("outcomes"), json=body, headers=world.ingest)
        assert r.status_code == 200, r.text
        assert r.json()["inserted"] == 1
        assert r.json()["joined"] == 1
        assert (await outcome(session, world, "m1")).error == 1.0


class TestOutcomeValidation:
    @pytest.mark.parametrize(
        ("entry", "task", "loc"),
        [
            ({"prediction_id": "x"}, None, ["body", "outcomes", 0]),
            ({"prediction_id": "x", "score": 1.5}, None, ["body", "outcomes", 0, "score"]),
            (
                {"prediction_id": "x", "prediction": "a", "label": 1},
                "regression",
                ["body", "outcomes", 0, "prediction"],
            ),
            (
                {"prediction_id": "x", "label": 1, "labelled_at": "2999-01-01T00:00:00Z"},
                None,
                ["body", "outcomes", 0, "labelled_at"],
            ),
            ({"prediction_id": "", "label": 1}, None, ["body", "outcomes", 0, "prediction_id"]),
        ],
    )
    async def test_bad_outcome_is_422_naming_it(
        self,
        client: httpx.AsyncClient,
        world: World,
        session: AsyncSession,
        entry: dict[str, object],
        task: str | None,
        loc: list[object],
    ) -> None:
        r = await client.post(
            world.path("outcomes"), json={"outcomes": [entry], "task": task}, headers=world.ingest
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"][: len(loc)] == loc
        assert await count(session, Outcome, product_id=world.product_id) == 0

    async def test_nan_score_is_422(self, client: httpx.AsyncClient, world: World) -> None:
        raw = b'{"outcomes": [{"prediction_id": "x", "prediction": 1, "score": NaN}]}'
        headers = {**world.ingest, "Content-Type": "application/json"}
        r = await client.post(world.path("outcomes"), content=raw, headers=headers)
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"][:4] == ["body", "outcomes", 0, "score"]
