"""Readers for the evaluation: exactly what was sent, only what was asked, reproducibly."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import numpy as np
import pytest
from sqlalchemy import event, update
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.db.session import Database
from retrigger.products.schemas import FeatureKind
from retrigger.signals import readers
from retrigger.signals.models import SampleColumn
from tests.signals.conftest import World

pytestmark = pytest.mark.asyncio(loop_scope="session")

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


async def send(client: httpx.AsyncClient, world: World, body: dict[str, Any]) -> int:
    r = await client.post(world.path("samples"), json=body, headers=world.ingest)
    assert r.status_code == 200, r.text
    return int(r.json()["sample_batch_id"])


class Statements:
    """SQL statements sent while the context is open."""

    def __init__(self, database: Database) -> None:
        self.engine = database.engine.sync_engine
        self.seen: list[tuple[str, Any]] = []

    def _record(self, conn: Any, cursor: Any, statement: str, params: Any, *_: Any) -> None:
        self.seen.append((statement, params))

    def __enter__(self) -> Statements:
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._record)

    def matching(self, text: str) -> Iterator[tuple[str, Any]]:
        return (s for s in self.seen if text in s[0])


class TestReadColumns:
    async def test_returns_exactly_what_was_sent(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        b1 = await send(
            client,
            world,
            {
                "rows": [
                    {"amount": 1.5, "country": "DE", "is_new_device": True},
                    {"amount": None, "country": "XX", "is_new_device": None},
                ],
                "time": iso(T0 + timedelta(hours=2)),
            },
        )
        b0 = await send(  # sent later, happened earlier: windows are by event time
            client,
            world,
            {
                "columns": {"amount": [-3.0, 1e300], "country": [None, "FR"]},
                "time": iso(T0 + timedelta(hours=1)),
            },
        )
        cols = await readers.read_columns(
            session,
            product_id=world.product_id,
            features=["amount", "country", "is_new_device", "tenure"],
            since=T0,
            until=T0 + timedelta(days=1),
            last_rows=None,
        )
        np.testing.assert_array_equal(cols["amount"].values, [-3.0, 1e300, 1.5, np.nan])
        assert cols["amount"].kind is FeatureKind.numeric
        assert cols["amount"].n_missing == 1
        country = cols["country"]
        assert [country.categories[c] if c >= 0 else None for c in country.values] == [
            None,
            "FR",
            "DE",
            "XX",
        ]
        assert country.present().tolist() == ["FR", "DE", "XX"]
        # batch b0 has no is_new_device column: its rows are missing
        np.testing.assert_array_equal(cols["is_new_device"].values, [np.nan, np.nan, 1.0, np.nan])
        assert cols["tenure"].n_missing == 4
        window = cols.window
        assert window.batch_ids == (b0, b1)
        assert window.n_rows == 4
        assert (window.first_event_time, window.last_event_time) == (
            T0 + timedelta(hours=1),
            T0 + timedelta(hours=2),
        )
        assert window.as_json()["digest"] == window.digest

    async def test_reads_only_the_requested_features(
        self,
        client: httpx.AsyncClient,
        world: World,
        session: AsyncSession,
        database: Database,
    ) -> None:
        batch = await send(client, world, {"rows": [{"amount": 1.0, "country": "DE"}]})
        # corrupt the unrequested column: decoding it would fail
        await session.execute(
            update(SampleColumn)
            .where(SampleColumn.batch_id == batch, SampleColumn.feature == "country")
            .values(data=b"\x01", categories=None)
        )
        with Statements(database) as sql:
            cols = await readers.read_columns(
                session,
                product_id=world.product_id,
                features=["amount"],
                since=None,
                until=None,
                last_rows=None,
            )
        assert list(cols) == ["amount"]
        assert cols["amount"].values.tolist() == [1.0]
        column_reads = list(sql.matching("FROM sample_columns"))
        assert len(column_reads) == 1
        params = column_reads[0][1]
        flat = list(params.values()) if isinstance(params, dict) else list(params)
        assert "amount" in flat
        assert "country" not in flat

    async def test_last_rows_takes_the_newest_rows(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        for hour, values in ((1, [1.0, 2.0, 3.0]), (2, [4.0, 5.0]), (3, [6.0, 7.0])):
            await send(
                client,
                world,
                {"columns": {"amount": values}, "time": iso(T0 + timedelta(hours=hour))},
            )
        cols = await readers.read_columns(
            session,
            product_id=world.product_id,
            features=["amount"],
            since=None,
            until=None,
            last_rows=5,
        )
        assert cols["amount"].values.tolist() == [3.0, 4.0, 5.0, 6.0, 7.0]
        assert cols.window.skipped_rows == 2
        again = await readers.read_columns(
            session,
            product_id=world.product_id,
            features=["amount"],
            since=T0,
            until=T0 + timedelta(hours=2, minutes=30),
            last_rows=4,
        )
        assert again["amount"].values.tolist() == [2.0, 3.0, 4.0, 5.0]

    async def test_batch_ids_reproduce_a_read_after_late_data(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        await send(client, world, {"columns": {"amount": [1.0]}, "time": iso(T0)})
        first = await readers.read_columns(
            session,
            product_id=world.product_id,
            features=["amount"],
            since=T0,
            until=T0 + timedelta(days=1),
            last_rows=None,
        )
        await send(client, world, {"columns": {"amount": [9.0]}, "time": iso(T0)})  # late
        replay = await readers.read_columns(
            session,
            product_id=world.product_id,
            features=["amount"],
            since=None,
            until=None,
            last_rows=None,
            batch_ids=first.window.batch_ids,
        )
        assert replay["amount"].values.tolist() == [1.0]
        assert replay.window.digest == first.window.digest

    async def test_empty_window(self, world: World, session: AsyncSession) -> None:
        cols = await readers.read_columns(
            session,
            product_id=world.product_id,
            features=["amount", "country"],
            since=None,
            until=None,
            last_rows=100,
        )
        assert cols["amount"].n_rows == 0
        assert cols["country"].categories == ()
        assert cols.window.n_rows == 0


class TestReadOutcomes:
    async def test_joined_outcomes_as_arrays(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {
            "outcomes": [
                {"prediction_id": "a", "prediction": 1, "score": 0.8, "predicted_at": iso(T0)},
                {
                    "prediction_id": "b",
                    "prediction": 0,
                    "predicted_at": iso(T0 + timedelta(hours=1)),
                },
                {"prediction_id": "c", "prediction": 1, "predicted_at": iso(T0)},
            ],
            "task": "classification",
        }
        await client.post(world.path("outcomes"), json=body, headers=world.ingest)
        labels = {
            "outcomes": [
                {"prediction_id": "a", "label": 1},
                {"prediction_id": "b", "label": 1},
            ],
            "task": "classification",
        }
        await client.post(world.path("outcomes"), json=labels, headers=world.ingest)
        out = await readers.read_outcomes(
            session, product_id=world.product_id, since=T0, until=None, last_rows=None
        )
        assert out.n == 2  # c has no label yet
        assert out.predictions.tolist() == [1.0, 0.0]
        assert out.labels.tolist() == [1.0, 1.0]
        np.testing.assert_array_equal(out.scores, [0.8, np.nan])
        assert out.errors.tolist() == [0.0, 1.0]
        assert out.window_json()["n"] == 2
        last = await readers.read_outcomes(
            session, product_id=world.product_id, since=None, until=None, last_rows=1
        )
        assert last.errors.tolist() == [1.0]

    async def test_detector_bookkeeping(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {
            "outcomes": [
                {"prediction_id": "a", "prediction": "x", "label": "x"},
                {"prediction_id": "b", "prediction": "x", "label": "y"},
                {"prediction_id": "c", "prediction": "x"},
            ]
        }
        await client.post(world.path("outcomes"), json=body, headers=world.ingest)
        ids, errors = await readers.unprocessed_errors(session, product_id=world.product_id)
        assert errors.tolist() == [0.0, 1.0]
        assert (
            await readers.mark_detector_processed(session, product_id=world.product_id, ids=ids)
            == 2
        )
        ids, _ = await readers.unprocessed_errors(session, product_id=world.product_id)
        assert ids.size == 0
        # a later label joins c, which the detectors have not seen yet
        later = {"outcomes": [{"prediction_id": "c", "label": "z"}]}
        await client.post(world.path("outcomes"), json=later, headers=world.ingest)
        ids, errors = await readers.unprocessed_errors(session, product_id=world.product_id)
        assert errors.tolist() == [1.0]


class TestReadMetric:
    async def test_series_in_event_time_order(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        points = [
            {"name": "acc", "value": 0.7, "time": iso(T0 + timedelta(hours=2))},
            {"name": "acc", "value": 0.9, "time": iso(T0)},
            {"name": "other", "value": 5, "time": iso(T0)},
            {"name": "acc", "value": 0.8, "time": iso(T0 + timedelta(hours=1))},
        ]
        await client.post(world.path("metrics"), json={"points": points}, headers=world.ingest)
        series = await readers.read_metric(
            session, product_id=world.product_id, name="acc", since=T0, until=None, last_rows=None
        )
        assert series.values.tolist() == [0.9, 0.8, 0.7]
        assert str(series.event_times[0]) == "2026-11-01T00:00:00.000000"
        last = await readers.read_metric(
            session, product_id=world.product_id, name="acc", since=None, until=None, last_rows=2
        )
        assert last.values.tolist() == [0.8, 0.7]
