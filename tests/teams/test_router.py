"""Teams over HTTP."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


class TestTeams:
    async def test_create_read_update(self, admin: httpx.AsyncClient) -> None:
        assert (await admin.post("/v1/teams", json={"name": "ml"})).status_code == 201
        r = await admin.patch("/v1/teams/ml", json={"description": "ML platform"})
        assert r.json()["description"] == "ML platform"
        assert (await admin.get("/v1/teams/ml")).json()["description"] == "ML platform"

    async def test_duplicate_is_409(self, admin: httpx.AsyncClient) -> None:
        await admin.post("/v1/teams", json={"name": "ml"})
        r = await admin.post("/v1/teams", json={"name": "ml"})
        assert r.status_code == 409

    async def test_team_with_products_cannot_be_deleted(self, admin: httpx.AsyncClient) -> None:
        await admin.post("/v1/teams", json={"name": "ml"})
        await admin.post("/v1/products", json={"name": "p", "team": "ml"})
        assert (await admin.delete("/v1/teams/ml")).status_code == 409
        await admin.delete("/v1/products/p")
        assert (await admin.delete("/v1/teams/ml")).status_code == 204
        assert (await admin.get("/v1/teams/ml")).status_code == 404

    async def test_team_named_by_a_connection_cannot_be_deleted(
        self, admin: httpx.AsyncClient
    ) -> None:
        # deleting it would drop the restriction and make the connection usable by every team
        await admin.post("/v1/teams", json={"name": "ml"})
        connection = {
            "name": "ml-only",
            "kind": "fake",
            "base_url": "http://fake.invalid",
            "auth": {"type": "none"},
            "teams": ["ml"],
        }
        assert (await admin.post("/v1/connections", json=connection)).status_code == 201
        r = await admin.delete("/v1/teams/ml")
        assert r.status_code == 409
        assert "connections are restricted to it" in r.json()["detail"]
        assert (await admin.get("/v1/connections/ml-only")).json()["teams"] == ["ml"]
        await admin.delete("/v1/connections/ml-only")
        assert (await admin.delete("/v1/teams/ml")).status_code == 204
