"""Products over HTTP: create, read, update (partial), delete, pagination, feature schema."""

from __future__ import annotations

import httpx
import pytest
import pytest_asyncio

pytestmark = pytest.mark.asyncio(loop_scope="session")

FEATURES = [
    {"name": "amount", "kind": "numeric", "min": 0, "max": 1e6},
    {"name": "country", "kind": "categorical", "categories": ["DE", "FR"]},
    {"name": "is_new_device", "kind": "boolean", "importance": 2.0},
]


@pytest_asyncio.fixture(loop_scope="session")
async def team(admin: httpx.AsyncClient) -> str:
    r = await admin.post("/v1/teams", json={"name": "risk-ml"})
    assert r.status_code == 201
    return "risk-ml"


class TestCreateProduct:
    async def test_creates_with_feature_schema(self, admin: httpx.AsyncClient, team: str) -> None:
        r = await admin.post(
            "/v1/products",
            json={"name": "fraud-scorer", "team": team, "tags": ["tier-1"], "features": FEATURES},
        )
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["team"] == team
        assert [f["name"] for f in body["features"]] == ["amount", "country", "is_new_device"]
        assert body["features"][2]["importance"] == 2.0

    async def test_org_key_must_name_team(self, admin: httpx.AsyncClient) -> None:
        r = await admin.post("/v1/products", json={"name": "x"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "team"]

    @pytest.mark.parametrize(
        ("feature", "field"),
        [
            ({"name": "a", "kind": "boolean", "min": 1}, "features.0"),
            ({"name": "a", "kind": "numeric", "categories": ["x"]}, "features.0"),
            ({"name": "a", "kind": "numeric", "min": 2, "max": 1}, "features.0"),
            ({"name": "a", "kind": "text"}, "features.0.kind"),
            ({"name": "1bad", "kind": "numeric"}, "features.0.name"),
            ({"name": "a", "kind": "categorical", "categories": ["x", "x"]}, "features.0"),
        ],
    )
    async def test_bad_feature_is_422_naming_it(
        self, admin: httpx.AsyncClient, team: str, feature: dict[str, object], field: str
    ) -> None:
        r = await admin.post(
            "/v1/products", json={"name": "p", "team": team, "features": [feature]}
        )
        assert r.status_code == 422
        locs = [".".join(str(p) for p in e["loc"]) for e in r.json()["errors"]]
        assert any(loc.startswith("body." + field) for loc in locs), locs

    async def test_bad_name_is_422(self, admin: httpx.AsyncClient, team: str) -> None:
        r = await admin.post("/v1/products", json={"name": "Not A Slug", "team": team})
        assert r.status_code == 422


class TestUpdateProduct:
    async def test_partial_update_keeps_other_fields(
        self, admin: httpx.AsyncClient, team: str
    ) -> None:
        await admin.post(
            "/v1/products", json={"name": "p", "team": team, "features": FEATURES, "tags": ["a"]}
        )
        r = await admin.patch("/v1/products/p", json={"description": "new"})
        assert r.status_code == 200
        assert r.json()["description"] == "new"
        assert r.json()["tags"] == ["a"]
        assert len(r.json()["features"]) == 3

    async def test_update_is_audited_with_diff(self, admin: httpx.AsyncClient, team: str) -> None:
        await admin.post("/v1/products", json={"name": "p", "team": team})
        await admin.patch("/v1/products/p", json={"tags": ["x"]})
        events = (
            await admin.get("/v1/audit", params={"entity_name": "p", "action": "update"})
        ).json()["items"]
        assert events[0]["diff"] == {"tags": {"old": [], "new": ["x"]}}
        assert events[0]["actor"] != "anonymous"


class TestDeleteAndList:
    async def test_delete_then_404(self, admin: httpx.AsyncClient, team: str) -> None:
        await admin.post("/v1/products", json={"name": "p", "team": team})
        assert (await admin.delete("/v1/products/p")).status_code == 204
        assert (await admin.get("/v1/products/p")).status_code == 404
        assert (await admin.delete("/v1/products/p")).status_code == 404

    async def test_cursor_pagination_visits_every_product_once(
        self, admin: httpx.AsyncClient, team: str
    ) -> None:
        for i in range(7):
            await admin.post("/v1/products", json={"name": f"p{i}", "team": team})
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 3, **({"cursor": cursor} if cursor else {})}
            page = (await admin.get("/v1/products", params=params)).json()
            seen += [p["name"] for p in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert seen == [f"p{i}" for i in reversed(range(7))]
