"""The audit trail records who, when, what and the diff, and filters."""

from __future__ import annotations

import httpx
import pytest

pytestmark = pytest.mark.asyncio(loop_scope="session")


class TestAudit:
    async def test_every_change_is_recorded(
        self, admin: httpx.AsyncClient, admin_token: str
    ) -> None:
        await admin.post("/v1/teams", json={"name": "ml"})
        await admin.post("/v1/products", json={"name": "p", "team": "ml"})
        await admin.patch("/v1/products/p", json={"description": "d"})
        await admin.delete("/v1/products/p")
        key = await admin.post("/v1/api-keys", json={"name": "k", "team": "ml", "scopes": ["read"]})
        await admin.delete(f"/v1/api-keys/{key.json()['key_id']}", params={"reason": "rotated"})
        items = (await admin.get("/v1/audit", params={"limit": 100})).json()["items"]
        seen = [(e["entity_type"], e["action"]) for e in items]
        for expected in [
            ("team", "create"),
            ("product", "create"),
            ("product", "update"),
            ("product", "delete"),
            ("api_key", "create"),
            ("api_key", "revoke"),
        ]:
            assert expected in seen
        actor = admin_token.split("_")[1]
        assert all(e["actor"] == actor for e in items if e["entity_name"] in {"p", "ml"})
        revoke = next(e for e in items if e["action"] == "revoke")
        assert revoke["reason"] == "rotated"

    async def test_filters(self, admin: httpx.AsyncClient) -> None:
        await admin.post("/v1/teams", json={"name": "ml"})
        await admin.post("/v1/products", json={"name": "p", "team": "ml"})
        items = (
            await admin.get("/v1/audit", params={"entity_type": "product", "action": "create"})
        ).json()["items"]
        assert [e["entity_name"] for e in items] == ["p"]
        future = (await admin.get("/v1/audit", params={"since": "2999-01-01T00:00:00Z"})).json()
        assert future["items"] == []
