"""Connections scoped to teams: who sees them, which policies may target them, and the check
again when a run is launched."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Scope
from retrigger.teams.models import Team
from tests.dispatch.conftest import STALE, TARGET, Live, RunsApi
from tests.fixtures.factories import create_key

pytestmark = pytest.mark.asyncio(loop_scope="session")


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return dict(r.json())


def locs(r: httpx.Response) -> list[list[Any]]:
    return [e["loc"] for e in problem(r, 422)["errors"]]


async def teams(api: RunsApi, *names: str) -> None:
    for name in names:
        r = await api.http.post("/v1/teams", json={"name": name})
        assert r.status_code in (201, 409), r.text


async def team_key(session: AsyncSession, name: str, scope: Scope = Scope.write) -> dict[str, str]:
    team = (await session.execute(select(Team).where(Team.name == name))).scalar_one()
    return {"Authorization": f"Bearer {await create_key(session, scopes=[scope], team=team)}"}


def policy(connection: str) -> dict[str, Any]:
    spec = {"rules": [STALE], "target": {**TARGET, "connection": connection}}
    return {"spec": spec, "change_reason": "scoping tests"}


class TestTeamsOnConnections:
    async def test_teams_are_stored_returned_and_audited(self, api: RunsApi) -> None:
        await teams(api, "ml", "risk")
        created = await api.connection("af", teams=["risk", "ml"])
        assert created["teams"] == ["ml", "risk"]
        assert (await api.http.get("/v1/connections/af")).json()["teams"] == ["ml", "risk"]
        org_wide = await api.connection("shared")
        assert org_wide["teams"] == []
        audit = (await api.http.get("/v1/audit", params={"entity_type": "connection"})).json()
        created_event = next(e for e in audit["items"] if e["entity_name"] == "af")
        assert created_event["diff"]["teams"]["new"] == ["ml", "risk"]

    async def test_unknown_team_is_422_naming_its_position(self, api: RunsApi) -> None:
        await teams(api, "ml")
        body = {"name": "af", "kind": "fake", "base_url": "http://127.0.0.1:1"}
        r = await api.http.post("/v1/connections", json={**body, "teams": ["ml", "nope"]})
        assert locs(r) == [["body", "teams", 1]]
        problem(await api.http.get("/v1/connections/af"), 404)

    async def test_replace_keeps_omitted_teams_and_empty_makes_it_org_wide(
        self, api: RunsApi
    ) -> None:
        await teams(api, "ml", "risk")
        await api.connection("af", teams=["ml"])
        body = {"kind": "airflow", "base_url": "http://airflow.test:9090"}
        r = await api.http.put("/v1/connections/af", json=body)
        assert r.json()["teams"] == ["ml"]
        r = await api.http.put("/v1/connections/af", json={**body, "teams": ["risk"]})
        assert r.json()["teams"] == ["risk"]
        assert locs(await api.http.put("/v1/connections/af", json={**body, "teams": ["x"]})) == [
            ["body", "teams", 0]
        ]
        r = await api.http.put("/v1/connections/af", json={**body, "teams": []})
        assert r.json()["teams"] == []
        audit = (await api.http.get("/v1/audit", params={"entity_type": "connection"})).json()
        diffs = [e["diff"] for e in audit["items"] if e["action"] == "update"]
        assert {"old": ["risk"], "new": []} in [d.get("teams") for d in diffs]

    async def test_a_team_admin_key_cannot_write_connections(
        self, api: RunsApi, session: AsyncSession
    ) -> None:
        await teams(api, "ml")
        await api.connection("af", teams=["ml"])
        admin = await team_key(session, "ml", Scope.admin)
        body = {"name": "mine", "kind": "fake", "base_url": "http://127.0.0.1:1"}
        problem(await api.http.post("/v1/connections", json=body, headers=admin), 403)
        replace = {"kind": "fake", "base_url": "http://127.0.0.1:1"}
        problem(await api.http.put("/v1/connections/af", json=replace, headers=admin), 403)
        problem(await api.http.delete("/v1/connections/af", headers=admin), 403)


class TestVisibility:
    async def test_team_keys_see_only_connections_their_team_may_use(
        self, api: RunsApi, session: AsyncSession
    ) -> None:
        await teams(api, "ml", "risk")
        await api.connection("ml-only", teams=["ml"])
        await api.connection("risk-only", teams=["risk"])
        await api.connection("shared")
        await api.connection("both", teams=["ml", "risk"])
        reader = await team_key(session, "ml", Scope.read)
        listed = (await api.http.get("/v1/connections", headers=reader)).json()["items"]
        assert [c["name"] for c in listed] == ["both", "ml-only", "shared"]
        assert (await api.http.get("/v1/connections/ml-only", headers=reader)).status_code == 200
        problem(await api.http.get("/v1/connections/risk-only", headers=reader), 404)

    async def test_org_wide_keys_see_every_connection(
        self, api: RunsApi, session: AsyncSession
    ) -> None:
        await teams(api, "ml", "risk")
        await api.connection("ml-only", teams=["ml"])
        await api.connection("risk-only", teams=["risk"])
        reader = {"Authorization": f"Bearer {await create_key(session, scopes=[Scope.read])}"}
        for headers in (reader, {}):
            listed = (await api.http.get("/v1/connections", headers=headers)).json()["items"]
            assert [c["name"] for c in listed] == ["ml-only", "risk-only"]


class TestPolicyTargets:
    async def test_product_policy_may_target_org_wide_or_its_teams_connections(
        self, api: RunsApi, session: AsyncSession
    ) -> None:
        await teams(api, "ml", "risk")
        await api.connection("shared")
        await api.connection("ml-only", teams=["ml"])
        await api.connection("risk-only", teams=["risk"])
        await api.product("p", target=None, stale=False)
        writer = await team_key(session, "ml")
        for connection in ("shared", "ml-only"):
            r = await api.http.put("/v1/products/p/policy", json=policy(connection), headers=writer)
            assert r.status_code == 200, r.text
        for connection in ("risk-only", "missing"):
            r = await api.http.put("/v1/products/p/policy", json=policy(connection), headers=writer)
            assert locs(r) == [["body", "spec", "target", "connection"]]
        # an org admin cannot bind another team's product to it either
        r = await api.http.put("/v1/products/p/policy", json=policy("risk-only"))
        assert locs(r) == [["body", "spec", "target", "connection"]]

    async def test_apply_names_the_document_and_applies_nothing(self, api: RunsApi) -> None:
        await teams(api, "ml", "risk")
        await api.connection("risk-only", teams=["risk"])
        await api.product("p", target=None, stale=False)
        await api.product("q", target=None, stale=False)
        head = {"api_version": "retrigger/v1", "kind": "ProductPolicy"}
        documents = [
            {**head, "name": "p", "spec": {"rules": [STALE], "description": "changed"}},
            {**head, "name": "q", "spec": policy("risk-only")["spec"]},
        ]
        body = {"documents": documents, "change_reason": "apply"}
        r = await api.http.post("/v1/policies:apply", json=body)
        assert locs(r) == [["body", "documents", 1, "spec", "target", "connection"]]
        current = (await api.http.get("/v1/products/p/policy")).json()
        assert current["version"] == 1

    async def test_templates_need_an_existing_connection_and_products_a_usable_one(
        self, api: RunsApi
    ) -> None:
        await teams(api, "ml", "risk")
        spec: dict[str, Any] = {
            "rules": [STALE],
            "target": {"connection": "missing", "pipeline": "train"},
            "overridable": {"target": {"connection": "any"}},
        }
        put = {"spec": spec, "change_reason": "standard"}
        r = await api.http.put("/v1/policy-templates/std", json=put)
        assert locs(r) == [["body", "spec", "target", "connection"]]
        await api.connection("risk-only", teams=["risk"])
        spec["target"]["connection"] = "risk-only"
        assert (await api.http.put("/v1/policy-templates/std", json=put)).status_code == 200
        await api.product("p", target=None, stale=False)  # a product of team ml
        inherited = {"spec": {"template": "std@1"}, "change_reason": "team scoping"}
        r = await api.http.put("/v1/products/p/policy", json=inherited)
        assert locs(r) == [["body", "spec", "(effective)", "target", "connection"]]
        await api.connection("shared")
        overridden = {
            "spec": {"template": "std@1", "overrides": {"target": {"connection": "missing"}}},
            "change_reason": "team scoping",
        }
        r = await api.http.put("/v1/products/p/policy", json=overridden)
        assert locs(r) == [["body", "spec", "overrides", "target", "connection"]]
        overridden["spec"]["overrides"]["target"]["connection"] = "shared"  # type: ignore[index]
        r = await api.http.put("/v1/products/p/policy", json=overridden)
        assert r.status_code == 200, r.text


class TestDispatchRecheck:
    async def test_a_run_whose_team_lost_the_connection_fails_without_launching(
        self, live: Live
    ) -> None:
        api = live.api
        await teams(api, "ml", "risk")
        await api.connection("airflow-local", teams=["ml"])
        await api.product("p", stale=False)
        r = await api.retrain("p")
        assert r.status_code == 201, r.text
        run_id = int(r.json()["run_id"])
        body = {"kind": "airflow", "base_url": "http://airflow.test:8080", "teams": ["risk"]}
        body["options"] = {"api_version": "v2"}
        assert (await api.http.put("/v1/connections/airflow-local", json=body)).status_code == 200
        await live.dispatcher().run_once()
        run = await live.run(run_id)
        assert run.state == "failed"
        assert run.last_error is not None
        assert "not available to team 'ml'" in run.last_error
        assert live.fake.launched == 0
        assert [a.error_class for a in await live.attempts(run_id)] == ["rejected"]

    async def test_a_launched_run_is_still_followed(self, live: Live) -> None:
        api = live.api
        await teams(api, "ml", "risk")
        await api.connection("airflow-local", teams=["ml"])
        await api.product("p", stale=False)
        run_id = int((await api.retrain("p")).json()["run_id"])
        await live.dispatcher().run_once()
        assert (await live.run(run_id)).state == "submitted"
        body = {"kind": "airflow", "base_url": "http://airflow.test:8080", "teams": ["risk"]}
        body["options"] = {"api_version": "v2"}
        assert (await api.http.put("/v1/connections/airflow-local", json=body)).status_code == 200
        key = (await api.get_run(run_id))["idempotency_key"]
        live.fake.set_state(key, "success")
        await live.poller().run_once()
        assert (await live.run(run_id)).state == "succeeded"
