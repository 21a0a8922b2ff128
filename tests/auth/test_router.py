"""API keys: authentication, scopes, team isolation, secrets never shown twice nor logged."""

from __future__ import annotations

import logging

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Scope
from tests.fixtures.factories import create_key, create_product, create_team

pytestmark = pytest.mark.asyncio(loop_scope="session")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestAuthentication:
    async def test_missing_key_is_401(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/v1/products")
        assert r.status_code == 401
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.headers["www-authenticate"] == "Bearer"

    @pytest.mark.parametrize(
        "header", ["Bearer", "Basic abc", "Bearer rtk_short", "Bearer not-a-key", "token"]
    )
    async def test_malformed_key_is_401(self, client: httpx.AsyncClient, header: str) -> None:
        r = await client.get("/v1/products", headers={"Authorization": header})
        assert r.status_code == 401

    async def test_unknown_key_with_valid_shape_is_401(self, client: httpx.AsyncClient) -> None:
        r = await client.get("/v1/products", headers=bearer("rtk_aaaaaaaa_" + "x" * 43))
        assert r.status_code == 401

    async def test_wrong_secret_is_401(self, client: httpx.AsyncClient, admin_token: str) -> None:
        forged = admin_token[:13] + "y" * 43
        r = await client.get("/v1/products", headers=bearer(forged))
        assert r.status_code == 401

    async def test_revoked_key_is_401(
        self, admin: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        token = await create_key(session, scopes=[Scope.read])
        assert (await admin.get("/v1/products", headers=bearer(token))).status_code == 200
        key_id = token.split("_")[1]
        assert (await admin.delete(f"/v1/api-keys/{key_id}")).status_code == 204
        assert (await admin.get("/v1/products", headers=bearer(token))).status_code == 401
        assert (await admin.delete(f"/v1/api-keys/{key_id}")).status_code == 409


class TestScopes:
    async def test_read_key_cannot_write(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        team = await create_team(session)
        token = await create_key(session, scopes=[Scope.read], team=team)
        r = await client.post("/v1/products", json={"name": "x"}, headers=bearer(token))
        assert r.status_code == 403

    async def test_ingest_key_cannot_read_products(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        team = await create_team(session)
        token = await create_key(session, scopes=[Scope.ingest], team=team)
        assert (await client.get("/v1/products", headers=bearer(token))).status_code == 403

    async def test_write_key_cannot_manage_keys_or_teams(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        team = await create_team(session)
        token = await create_key(session, scopes=[Scope.write], team=team)
        h = bearer(token)
        assert (await client.get("/v1/api-keys", headers=h)).status_code == 403
        assert (await client.post("/v1/teams", json={"name": "t"}, headers=h)).status_code == 403

    async def test_team_admin_cannot_create_teams_or_org_keys(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        team = await create_team(session)
        h = bearer(await create_key(session, scopes=[Scope.admin], team=team))
        assert (await client.post("/v1/teams", json={"name": "t2"}, headers=h)).status_code == 403
        r = await client.post("/v1/api-keys", json={"name": "k", "scopes": ["read"]}, headers=h)
        assert r.status_code == 201
        assert r.json()["team"] == team.name  # defaulted to the key's own team


class TestTeamIsolation:
    async def _setup(self, session: AsyncSession) -> tuple[str, str]:
        team_a, team_b = await create_team(session), await create_team(session)
        await create_product(session, team=team_a, name="a-model")
        await create_product(session, team=team_b, name="b-model")
        return (
            await create_key(session, scopes=[Scope.write], team=team_a),
            team_b.name,
        )

    async def test_other_teams_product_is_404_on_read_update_delete(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        token_a, _ = await self._setup(session)
        h = bearer(token_a)
        missing = await client.get("/v1/products/does-not-exist", headers=h)
        for r in (
            await client.get("/v1/products/b-model", headers=h),
            await client.patch("/v1/products/b-model", json={"description": "x"}, headers=h),
            await client.delete("/v1/products/b-model", headers=h),
        ):
            assert r.status_code == 404
            body = r.json()
            # same answer as a product that does not exist, but for the name
            assert body["type"] == missing.json()["type"]
            assert body["title"] == missing.json()["title"]
        assert (await client.get("/v1/products/a-model", headers=h)).status_code == 200

    async def test_lists_show_only_own_team(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        token_a, team_b = await self._setup(session)
        h = bearer(token_a)
        names = [p["name"] for p in (await client.get("/v1/products", headers=h)).json()["items"]]
        assert names == ["a-model"]
        teams = [t["name"] for t in (await client.get("/v1/teams", headers=h)).json()["items"]]
        assert team_b not in teams
        assert len(teams) == 1
        audit = (await client.get("/v1/audit", headers=h)).json()["items"]
        assert all(e["entity_name"] != "b-model" for e in audit)

    async def test_cannot_create_product_in_other_team(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        token_a, team_b = await self._setup(session)
        r = await client.post(
            "/v1/products", json={"name": "sneaky", "team": team_b}, headers=bearer(token_a)
        )
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["body", "team"]

    async def test_team_admin_cannot_see_other_teams_keys(
        self, client: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        team_a, team_b = await create_team(session), await create_team(session)
        other = await create_key(session, scopes=[Scope.read], team=team_b)
        h = bearer(await create_key(session, scopes=[Scope.admin], team=team_a))
        other_id = other.split("_")[1]
        assert (await client.get(f"/v1/api-keys/{other_id}", headers=h)).status_code == 404
        assert (await client.delete(f"/v1/api-keys/{other_id}", headers=h)).status_code == 404
        listed = (await client.get("/v1/api-keys", headers=h)).json()["items"]
        assert other_id not in [k["key_id"] for k in listed]


class TestSecrets:
    async def test_token_shown_once_and_never_logged(
        self, admin: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.DEBUG)
        await admin.post("/v1/teams", json={"name": "ml"})
        created = await admin.post(
            "/v1/api-keys", json={"name": "am", "team": "ml", "scopes": ["ingest"]}
        )
        assert created.status_code == 201
        token = created.json()["token"]
        assert token.startswith("rtk_")
        key_id = created.json()["key_id"]
        secret = token.split("_", 2)[2]
        # use it, fail with it, list and read it
        await admin.get("/v1/products", headers=bearer(token))
        await admin.get("/v1/products", headers=bearer(token + "x"))
        listing = await admin.get("/v1/api-keys")
        one = await admin.get(f"/v1/api-keys/{key_id}")
        audit = await admin.get("/v1/audit", params={"entity_type": "api_key"})
        for response in (listing, one, audit):
            assert response.status_code == 200
            assert secret not in response.text
            assert "token" not in response.json()
            assert "secret_hash" not in response.text
        assert secret not in caplog.text
