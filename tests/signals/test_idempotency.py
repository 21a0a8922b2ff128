"""Idempotent batches: a retry with the same key is a no-op answered alike; a reused key is 409."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.signals.models import MetricPoint, Outcome, SampleBatch
from tests.signals.conftest import World, count

pytestmark = pytest.mark.asyncio(loop_scope="session")

BATCHES = {
    "metrics": (
        {"points": [{"name": "acc", "value": 0.9}, {"name": "acc", "value": 0.8}]},
        MetricPoint,
    ),
    "samples": ({"rows": [{"amount": 1.0}, {"amount": 2.0}]}, SampleBatch),
    "outcomes": ({"outcomes": [{"prediction_id": "a", "prediction": 1}]}, Outcome),
}


@pytest.mark.parametrize("kind", sorted(BATCHES))
class TestIdempotency:
    async def test_retry_with_same_key_is_stored_once(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession, kind: str
    ) -> None:
        body, model = BATCHES[kind]
        headers = {**world.ingest, "Idempotency-Key": f"retry-{kind}"}
        first = await client.post(world.path(kind), json=body, headers=headers)
        assert first.status_code == 200, first.text
        stored = await count(session, model, product_id=world.product_id)
        again = await client.post(world.path(kind), json=body, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json() == first.json() | {"duplicate": True}
        assert first.json()["batch_id"] == f"retry-{kind}"
        assert await count(session, model, product_id=world.product_id) == stored

    async def test_same_key_different_body_is_409(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession, kind: str
    ) -> None:
        body, model = BATCHES[kind]
        headers = {**world.ingest, "Idempotency-Key": "k1"}
        assert (await client.post(world.path(kind), json=body, headers=headers)).status_code == 200
        stored = await count(session, model, product_id=world.product_id)
        changed = {**body, "batch_id": "k1"}  # same key, now in the body; body differs
        r = await client.post(world.path(kind), json=changed, headers=world.ingest)
        assert r.status_code == 409, r.text
        assert r.json()["title"] == "IdempotencyKeyReused"
        assert await count(session, model, product_id=world.product_id) == stored

    async def test_batch_id_in_body_works_like_the_header(
        self, client: httpx.AsyncClient, world: World, session: AsyncSession, kind: str
    ) -> None:
        body, model = BATCHES[kind]
        body = {**body, "batch_id": "b-1"}
        first = await client.post(world.path(kind), json=body, headers=world.ingest)
        again = await client.post(world.path(kind), json=body, headers=world.ingest)
        assert again.json()["duplicate"] is True
        assert again.json()["accepted"] == first.json()["accepted"]

    async def test_keys_are_per_kind(
        self, client: httpx.AsyncClient, world: World, kind: str
    ) -> None:
        for other, (body, _) in BATCHES.items():
            headers = {**world.ingest, "Idempotency-Key": "shared"}
            r = await client.post(world.path(other), json=body, headers=headers)
            assert r.json()["duplicate"] is False


async def test_header_and_body_key_must_agree(client: httpx.AsyncClient, world: World) -> None:
    body = {"points": [{"name": "a", "value": 1}], "batch_id": "x"}
    headers = {**world.ingest, "Idempotency-Key": "y"}
    r = await client.post(world.path("metrics"), json=body, headers=headers)
    assert r.status_code == 422
    assert r.json()["errors"][0]["loc"] == ["body", "batch_id"]


async def test_rejected_batch_does_not_burn_its_key(
    client: httpx.AsyncClient, world: World
) -> None:
    headers = {**world.ingest, "Idempotency-Key": "fix-and-retry"}
    bad = {"rows": [{"amount": "x"}]}
    assert (await client.post(world.path("samples"), json=bad, headers=headers)).status_code == 422
    good = {"rows": [{"amount": 1.0}]}
    r = await client.post(world.path("samples"), json=good, headers=headers)
    assert r.status_code == 200
    assert r.json()["duplicate"] is False
