"""The runs API: fired decisions become runs, approval, cancellation, guards, manual retrains
and team isolation, through HTTP inside a rolled-back transaction (callbacks: test_callbacks.py)."""

from __future__ import annotations

import re
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Scope
from retrigger.teams.models import Team
from tests.dispatch.conftest import RunsApi
from tests.fixtures.factories import create_key, create_team

pytestmark = pytest.mark.asyncio(loop_scope="session")


async def setup(api: RunsApi, **guards: Any) -> str:
    await api.connection()
    return await api.product(**guards)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class TestFiredDecisionCreatesRun:
    async def test_run_is_pending_with_key_context_and_rendered_parameters(
        self, api: RunsApi
    ) -> None:
        await setup(api)
        decision = await api.evaluate()
        assert decision["outcome"] == "fired", decision["reason"]
        run_id = decision["run_id"]
        run = await api.get_run(run_id)
        assert run["state"] == "pending"
        # unique beyond this database: run ids restart after a reset, the suffix does not repeat
        assert re.fullmatch(rf"retrigger-run-{run_id}-[0-9a-f]{{6}}", run["idempotency_key"])
        assert run["decision_id"] == decision["id"]
        assert (run["connection"], run["kind"], run["pipeline"]) == (
            "airflow-local",
            "airflow",
            "train",
        )
        assert run["parameters"] == {"product": "p", "run": str(run_id), "why": decision["reason"]}
        assert run["context"]["product"] == "p"
        assert run["context"]["decision_id"] == decision["id"]
        assert run["context"]["model_version"] == "m1"
        assert [(t["from"], t["to"]) for t in run["transitions"]] == [(None, "pending")]
        stored = (await api.http.get(f"/v1/decisions/{decision['id']}")).json()
        assert stored["run_id"] == run_id

    async def test_list_filters_by_product_and_state(self, api: RunsApi) -> None:
        await setup(api)
        run_id = await api.fired_run()
        listed = await api.runs()
        assert [r["id"] for r in listed] == [run_id]
        r = await api.http.get("/v1/runs", params={"state": "succeeded"})
        assert r.status_code == 200
        assert r.json()["items"] == []
        r = await api.http.get("/v1/runs", params={"state": "exploded"})
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["query", "state"]

    async def test_unknown_run_is_404_problem(self, api: RunsApi) -> None:
        r = await api.http.get("/v1/runs/987654")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith("application/problem+json")

    async def test_policy_without_target_fires_but_launches_nothing(self, api: RunsApi) -> None:
        await api.product(target=None)
        decision = await api.evaluate()
        assert decision["outcome"] == "fired"
        assert "nothing launched" in decision["reason"]
        assert decision["run_id"] is None
        assert await api.runs() == []


class TestGuardsHoldRuns:
    async def test_second_fired_decision_is_suppressed_while_a_run_is_active(
        self, api: RunsApi
    ) -> None:
        await setup(api)
        run_id = await api.fired_run()
        second = await api.evaluate()
        assert second["outcome"] == "suppressed"
        assert second["suppressed_by"] == "active_run"
        assert f"run {run_id}" in second["reason"]
        assert second["run_id"] is None
        assert len(await api.runs()) == 1

    async def test_shadow_mode_creates_no_run(self, api: RunsApi) -> None:
        await setup(api, mode="shadow")
        decision = await api.evaluate()
        assert decision["suppressed_by"] == "shadow_mode"
        assert decision["run_id"] is None
        assert await api.runs() == []

    async def test_cooldown_creates_no_run(self, api: RunsApi) -> None:
        await setup(api, cooldown="1d")
        run_id = await api.fired_run()
        assert (await api.act(run_id, "cancel")).status_code == 200
        decision = await api.evaluate()
        assert decision["suppressed_by"] == "cooldown"
        assert decision["run_id"] is None
        assert [r["id"] for r in await api.runs()] == [run_id]

    async def test_max_runs_creates_no_run(self, api: RunsApi) -> None:
        await setup(api, max_runs=1, period="7d")
        run_id = await api.fired_run()
        assert (await api.act(run_id, "cancel")).status_code == 200
        decision = await api.evaluate()
        assert decision["suppressed_by"] == "max_runs"
        assert [r["id"] for r in await api.runs()] == [run_id]


class TestApproval:
    async def test_awaiting_approval_then_approved_becomes_pending(self, api: RunsApi) -> None:
        await setup(api, require_approval=True)
        decision = await api.evaluate()
        assert decision["requires_approval"] is True
        run_id = decision["run_id"]
        assert (await api.get_run(run_id))["state"] == "awaiting_approval"
        r = await api.act(run_id, "approve", "looked at the drift report")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "pending"
        assert r.json()["transitions"][-1]["cause"].endswith("looked at the drift report")
        again = await api.act(run_id, "approve")
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")
        audit = (await api.http.get("/v1/audit", params={"entity_type": "run"})).json()
        assert [(e["action"], e["reason"]) for e in audit["items"]] == [
            ("approve", "looked at the drift report")
        ]

    async def test_reject_ends_the_run(self, api: RunsApi) -> None:
        await setup(api, require_approval=True)
        run_id = await api.fired_run()
        r = await api.act(run_id, "reject", "data is known bad")
        assert r.status_code == 200
        assert r.json()["state"] == "rejected"
        assert r.json()["finished_at"] is not None
        assert (await api.act(run_id, "approve")).status_code == 409
        # a rejected run is not active: the next fired decision may launch again
        assert (await api.evaluate())["run_id"] is not None

    @pytest.mark.parametrize("body", [{}, {"reason": ""}])
    async def test_reason_is_required(self, api: RunsApi, body: dict[str, str]) -> None:
        await setup(api, require_approval=True)
        run_id = await api.fired_run()
        r = await api.http.post(f"/v1/runs/{run_id}:approve", json=body)
        assert r.status_code == 422
        assert r.headers["content-type"].startswith("application/problem+json")
        assert [e["loc"] for e in r.json()["errors"]] == [["body", "reason"]]
        assert (await api.get_run(run_id))["state"] == "awaiting_approval"

    async def test_approving_a_pending_run_is_409(self, api: RunsApi) -> None:
        await setup(api)
        run_id = await api.fired_run()
        assert (await api.act(run_id, "approve")).status_code == 409
        assert (await api.act(run_id, "reject")).status_code == 409


class TestCancel:
    async def test_cancel_pending_run_then_again_is_409(self, api: RunsApi) -> None:
        await setup(api)
        run_id = await api.fired_run()
        r = await api.act(run_id, "cancel", "wrong data window")
        assert r.status_code == 200
        assert r.json()["state"] == "cancelled"
        assert (await api.act(run_id, "cancel")).status_code == 409

    async def test_cancel_awaiting_approval(self, api: RunsApi) -> None:
        await setup(api, require_approval=True)
        run_id = await api.fired_run()
        r = await api.act(run_id, "cancel")
        assert r.json()["state"] == "cancelled"


class TestManualRetrain:
    async def test_creates_manual_decision_and_pending_run(self, api: RunsApi) -> None:
        await setup(api)
        r = await api.retrain()
        assert r.status_code == 201, r.text
        decision = r.json()
        assert decision["trigger"] == "manual"
        assert decision["outcome"] == "fired"
        assert "new data landed" in decision["reason"]
        run = await api.get_run(decision["run_id"])
        assert run["state"] == "pending"
        assert run["decision_id"] == decision["id"]

    async def test_guards_apply(self, api: RunsApi) -> None:
        await setup(api, cooldown="1d")
        first = (await api.retrain()).json()
        busy = await api.retrain()
        assert busy.status_code == 201
        assert busy.json()["suppressed_by"] == "active_run"
        assert busy.json()["run_id"] is None
        await api.act(first["run_id"], "cancel")
        cooling = (await api.retrain()).json()
        assert cooling["suppressed_by"] == "cooldown"
        assert len(await api.runs()) == 1

    async def test_force_skips_cooldown_and_approval_for_org_admins(self, api: RunsApi) -> None:
        await setup(api, cooldown="1d", require_approval=True)
        first = (await api.retrain()).json()
        assert (await api.get_run(first["run_id"]))["state"] == "awaiting_approval"
        await api.act(first["run_id"], "cancel")
        r = await api.retrain(force=True)
        assert r.status_code == 201, r.text
        forced = r.json()
        assert forced["outcome"] == "fired"
        assert forced["requires_approval"] is False
        assert (await api.get_run(forced["run_id"]))["state"] == "pending"

    async def test_force_with_an_active_run_is_409(self, api: RunsApi) -> None:
        await setup(api)
        await api.retrain()
        r = await api.retrain(force=True)
        assert r.status_code == 409
        assert len(await api.runs()) == 1

    async def test_force_needs_an_org_admin_key(self, api: RunsApi, session: AsyncSession) -> None:
        await setup(api)
        team_writer = await create_key(
            session, scopes=[Scope.write], team=await create_team(session)
        )
        org_writer = await create_key(session, scopes=[Scope.write])
        for token in (team_writer, org_writer):
            r = await api.http.post(
                "/v1/products/p:retrain",
                json={"reason": "now", "force": True},
                headers=bearer(token),
            )
            assert r.status_code == 403, r.text
        assert await api.runs() == []

    async def test_without_target_is_422_naming_the_product(self, api: RunsApi) -> None:
        await api.product(target=None)
        r = await api.retrain()
        assert r.status_code == 422
        assert r.json()["errors"][0]["loc"] == ["path", "product"]

    async def test_reason_is_required(self, api: RunsApi) -> None:
        await setup(api)
        r = await api.http.post("/v1/products/p:retrain", json={"force": False})
        assert r.status_code == 422
        assert [e["loc"] for e in r.json()["errors"]] == [["body", "reason"]]


class TestTeamIsolation:
    async def test_another_teams_run_is_404(self, api: RunsApi, session: AsyncSession) -> None:
        await setup(api)
        run_id = await api.fired_run()
        stranger = bearer(
            await create_key(session, scopes=[Scope.write], team=await create_team(session))
        )
        http = api.http
        assert (await http.get(f"/v1/runs/{run_id}", headers=stranger)).status_code == 404
        for action in ("approve", "reject", "cancel", "callback"):
            body = {"reason": "mine now"} if action != "callback" else {"state": "running"}
            r = await http.post(f"/v1/runs/{run_id}:{action}", json=body, headers=stranger)
            assert r.status_code == 404, (action, r.text)
        listed = await http.get("/v1/runs", headers=stranger)
        assert listed.json()["items"] == []
        assert (await http.get("/v1/runs?product=p", headers=stranger)).status_code == 404
        assert (
            await http.post("/v1/products/p:retrain", json={"reason": "x"}, headers=stranger)
        ).status_code == 404
        assert (await api.get_run(run_id))["state"] == "pending"

    async def test_own_team_key_sees_and_acts(self, api: RunsApi, session: AsyncSession) -> None:
        await setup(api)
        run_id = await api.fired_run()
        ml = (await session.execute(select(Team).where(Team.name == "ml"))).scalar_one()
        member = bearer(await create_key(session, scopes=[Scope.write], team=ml))
        r = await api.http.get(f"/v1/runs/{run_id}", headers=member)
        assert r.status_code == 200, r.text
        r = await api.http.post(f"/v1/runs/{run_id}:cancel", json={"reason": "x"}, headers=member)
        assert r.status_code == 200
