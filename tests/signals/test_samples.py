"""Feature samples over HTTP: row-wise and columnar, schema checks, compact storage."""

from __future__ import annotations

import httpx
import numpy as np
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.signals.models import SampleBatch, SampleColumn
from tests.signals.conftest import World, count

pytestmark = pytest.mark.asyncio(loop_scope="session")

ROWS = [
    {"amount": 12.5, "country": "DE", "is_new_device": False},
    {"amount": 2000, "country": "IT", "is_new_device": None},  # out of range, unknown category
    {"amount": None, "country": "FR", "is_new_device": True},
    {"country": None},
]


class TestRowWise:
    async def test_stores_one_column_per_feature(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        r = await client.post(
            world.path("samples"),
            json={"rows": ROWS, "time": "2026-11-01T10:00:00Z", "model_version": "v3"},
            headers=world.ingest,
        )
        assert r.status_code == 200, r.text
        out = r.json()
        assert out["accepted"] == 4
        # absent keys are missing values; a feature no row mentions is missing everywhere
        assert out["missing"] == {"amount": 2, "country": 1, "is_new_device": 2, "tenure": 4}
        assert out["out_of_range"] == {"amount": 1, "country": 1}
        batch = (
            await session.execute(
                select(SampleBatch).where(SampleBatch.id == out["sample_batch_id"])
            )
        ).scalar_one()
        assert (batch.n_rows, batch.model_version) == (4, "v3")
        cols = {
            c.feature: c
            for c in (
                await session.execute(select(SampleColumn).where(SampleColumn.batch_id == batch.id))
            ).scalars()
        }
        assert set(cols) == {"amount", "country", "is_new_device"}  # tenure never sent
        amount = np.frombuffer(cols["amount"].data, dtype="<f8")
        np.testing.assert_array_equal(amount, [12.5, 2000.0, np.nan, np.nan])
        assert cols["amount"].n_missing == 2
        codes = np.frombuffer(cols["country"].data, dtype="<i4")
        assert cols["country"].categories == ["DE", "IT", "FR"]
        assert codes.tolist() == [0, 1, 2, -1]
        flags = np.frombuffer(cols["is_new_device"].data, dtype="u1")
        assert flags.tolist() == [0, 255, 1, 255]

    @pytest.mark.parametrize(
        ("row", "loc"),
        [
            ({"foo": 1}, ["body", "rows", 1, "foo"]),
            ({"amount": "12"}, ["body", "rows", 1, "amount"]),
            ({"amount": True}, ["body", "rows", 1, "amount"]),
            ({"country": 7}, ["body", "rows", 1, "country"]),
            ({"is_new_device": 1}, ["body", "rows", 1, "is_new_device"]),
            ({"is_new_device": "true"}, ["body", "rows", 1, "is_new_device"]),
            ({"amount": [1]}, ["body", "rows", 1, "amount"]),
        ],
    )
    async def test_unknown_feature_or_wrong_kind_is_422_naming_it(
        self,
        client: httpx.AsyncClient,
        world: World,
        session: AsyncSession,
        row: dict[str, object],
        loc: list[object],
    ) -> None:
        r = await client.post(
            world.path("samples"), json={"rows": [{"amount": 1.0}, row]}, headers=world.ingest
        )
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["errors"][0]["loc"] == loc
        assert f"rows[1].{loc[-1]}" in problem["detail"]
        assert await count(session, SampleBatch, product_id=world.product_id) == 0
        assert await count(session, SampleColumn) == 0

    async def test_nan_in_raw_body_is_422(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        raw = b'{"rows": [{"amount": 1}, {"amount": 2}, {"amount": NaN}]}'
        headers = {**world.ingest, "Content-Type": "application/json"}
        r = await client.post(world.path("samples"), content=raw, headers=headers)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "rows", 2, "amount"]
        assert await count(session, SampleBatch, product_id=world.product_id) == 0

    async def test_every_offending_value_is_listed(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        rows = [{"amount": "x"}, {"amount": 1}, {"amount": "y"}]
        r = await client.post(world.path("samples"), json={"rows": rows}, headers=world.ingest)
        assert [e["loc"][2] for e in r.json()["errors"]] == [0, 2]


class TestColumnar:
    async def test_columns_are_stored_like_rows(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {"columns": {"amount": [1.0, 2, None], "country": ["DE", "DE", "FR"]}}
        r = await client.post(world.path("samples"), json=body, headers=world.ingest)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 3
        assert r.json()["missing"] == {"amount": 1, "is_new_device": 3, "tenure": 3}

    async def test_unequal_lengths_is_422_naming_the_column(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {"columns": {"amount": [1.0, 2.0, 3.0], "country": ["DE", "FR"]}}
        r = await client.post(world.path("samples"), json=body, headers=world.ingest)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == ["body", "columns", "country"]
        assert await count(session, SampleBatch, product_id=world.product_id) == 0

    @pytest.mark.parametrize(
        ("columns", "loc"),
        [
            ({"amount": [1.0] * 8, "foo": [1] * 8}, ["body", "columns", "foo"]),
            ({"amount": [1.0] * 7 + ["x"]}, ["body", "columns", "amount", 7]),
            ({"country": ["DE"] * 7 + [1.5]}, ["body", "columns", "country", 7]),
        ],
    )
    async def test_bad_column_is_422_naming_it(
        self,
        client: httpx.AsyncClient,
        world: World,
        columns: dict[str, list[object]],
        loc: list[object],
    ) -> None:
        r = await client.post(
            world.path("samples"), json={"columns": columns}, headers=world.ingest
        )
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"] == loc

    async def test_nan_in_a_column_is_422(self, client: httpx.AsyncClient, world: World) -> None:
        raw = b'{"columns": {"amount": [1, 2, 3, 4, 5, 6, 7, Infinity]}}'
        headers = {**world.ingest, "Content-Type": "application/json"}
        r = await client.post(world.path("samples"), content=raw, headers=headers)
        assert r.status_code == 422, r.text
        problem = r.json()
        assert problem["errors"][0]["loc"] == ["body", "columns", "amount", 7]
        assert "columns.amount[7]" in problem["detail"]

    async def test_rows_and_columns_together_is_422(
        self, client: httpx.AsyncClient, world: World
    ) -> None:
        body = {"rows": [{"amount": 1}], "columns": {"amount": [1]}}
        r = await client.post(world.path("samples"), json=body, headers=world.ingest)
        assert r.status_code == 422

    async def test_more_than_100000_rows_is_422(
        self, big_client: httpx.AsyncClient, world: World, session: AsyncSession
    ) -> None:
        body = {"columns": {"amount": [1.0] * 100_001}}
        r = await big_client.post(world.path("samples"), json=body, headers=world.ingest)
        assert r.status_code == 422, r.text
        assert r.json()["errors"][0]["loc"][:3] == ["body", "columns", "amount"]
        assert await count(session, SampleBatch, product_id=world.product_id) == 0

    async def test_100000_rows_are_accepted(
        self, big_client: httpx.AsyncClient, world: World
    ) -> None:
        body = {"columns": {"amount": [1.5] * 100_000, "country": ["DE", "FR"] * 50_000}}
        r = await big_client.post(world.path("samples"), json=body, headers=world.ingest)
        assert r.status_code == 200, r.text
        assert r.json()["accepted"] == 100_000

    async def test_future_time_is_422(self, client: httpx.AsyncClient, world: World) -> None:
        body = {"rows": [{"amount": 1}], "time": "2999-01-01T00:00:00Z"}
        r = await client.post(world.path("samples"), json=body, headers=world.ingest)
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "time"]
