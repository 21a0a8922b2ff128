"""Run callbacks: signed with the run's own key (bound to the run), or sent with a write key of
the run's team; progress reports, metrics and model versions."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from fastapi import FastAPI
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth.scopes import Scope
from retrigger.dispatch.models import Run
from retrigger.dispatch.orchestrators.webhook import run_secret, sign
from retrigger.teams.models import Team
from tests.dispatch.conftest import CALLBACK_SECRET, RunsApi
from tests.fixtures.factories import create_key, create_team

pytestmark = pytest.mark.asyncio(loop_scope="session")


@pytest_asyncio.fixture(loop_scope="session")
async def anonymous(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client with no API key (signed callbacks need none)."""
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def pipeline_key(callback_secret: str, idempotency_key: str) -> str:
    """The derivation as docs/runs.md shows it to pipeline authors, written independently of
    retrigger's code."""
    raw = callback_secret.removeprefix("whsec_")
    secret = base64.b64decode(raw) if callback_secret.startswith("whsec_") else raw.encode()
    digest = hmac.new(secret, idempotency_key.encode(), hashlib.sha256).digest()
    return "whsec_" + base64.b64encode(digest).decode()


def signed(
    body: dict[str, Any], *, key: str, at: float | None = None, msg_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    stamp = int(time.time() if at is None else at)
    msg_id = msg_id or f"msg-{stamp}-{len(raw)}"
    headers = {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(key, msg_id, stamp, raw),
    }
    return raw, headers


def problem(r: httpx.Response, status: int) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return dict(r.json())


class Pipeline:
    """What a pipeline does: derive its run's key from the shared secret, sign, post."""

    def __init__(self, http: httpx.AsyncClient, api: RunsApi) -> None:
        self.http = http
        self.api = api

    async def key(self, run_id: int) -> str:
        run = await self.api.get_run(run_id)
        return pipeline_key(CALLBACK_SECRET, run["idempotency_key"])

    async def report(
        self, run_id: int, body: dict[str, Any], *, key: str | None = None, **kwargs: Any
    ) -> httpx.Response:
        raw, headers = signed(body, key=key or await self.key(run_id), **kwargs)
        return await self.http.post(f"/v1/runs/{run_id}:callback", content=raw, headers=headers)


@pytest.fixture
def pipeline(anonymous: httpx.AsyncClient, api: RunsApi) -> Pipeline:
    return Pipeline(anonymous, api)


async def fired(api: RunsApi, product: str = "p", **guards: Any) -> int:
    if (await api.http.get("/v1/connections/airflow-local")).status_code == 404:
        await api.connection()
    await api.product(product, **guards)
    return await api.fired_run(product)


class TestRunKey:
    async def test_documented_derivation_is_the_servers(self) -> None:
        key = "retrigger-run-7-0a1b2c"
        assert run_secret(CALLBACK_SECRET, key) == pipeline_key(CALLBACK_SECRET, key)
        assert run_secret("raw-secret-of-32-characters-0123", key) == pipeline_key(
            "raw-secret-of-32-characters-0123", key
        )

    async def test_each_run_has_its_own_key(self) -> None:
        one = run_secret(CALLBACK_SECRET, "retrigger-run-1-aaaaaa")
        two = run_secret(CALLBACK_SECRET, "retrigger-run-2-bbbbbb")
        assert one != two
        assert CALLBACK_SECRET not in (one, two)


class TestSignedCallbacks:
    async def test_signed_callbacks_follow_the_pipeline(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api)
        r = await pipeline.report(run_id, {"state": "running"})
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "running"
        done = {"state": "succeeded", "model_version": "m2", "metrics": {"auc": 0.91}}
        r = await pipeline.report(run_id, done)
        assert r.status_code == 200, r.text
        run = r.json()
        assert (run["state"], run["model_version"]) == ("succeeded", "m2")
        assert run["outputs"]["metrics"] == {"auc": 0.91}
        assert [(t["from"], t["to"], t["actor"]) for t in run["transitions"][1:]] == [
            ("pending", "submitted", "callback"),
            ("submitted", "running", "callback"),
            ("running", "succeeded", "callback"),
        ]

    async def test_a_callback_signed_for_one_run_is_refused_on_another(
        self, api: RunsApi, pipeline: Pipeline, anonymous: httpx.AsyncClient
    ) -> None:
        first = await fired(api, "p")
        second = await fired(api, "q")
        raw, headers = signed({"state": "failed"}, key=await pipeline.key(first))
        r = await anonymous.post(f"/v1/runs/{second}:callback", content=raw, headers=headers)
        problem(r, 401)
        assert (await api.get_run(second))["state"] == "pending"
        # the very same request is good for the run it was signed for
        r = await anonymous.post(f"/v1/runs/{first}:callback", content=raw, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "failed"

    async def test_the_shared_secret_itself_does_not_sign_callbacks(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api)
        problem(await pipeline.report(run_id, {"state": "running"}, key=CALLBACK_SECRET), 401)
        assert (await api.get_run(run_id))["state"] == "pending"

    async def test_bad_signature_and_stale_timestamp_are_401(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api)
        other = pipeline_key("whsec_" + base64.b64encode(b"x" * 32).decode(), "k")
        wrong = await pipeline.report(run_id, {"state": "running"}, key=other)
        stale = await pipeline.report(run_id, {"state": "running"}, at=time.time() - 3600)
        for r in (wrong, stale):
            problem(r, 401)
        assert (await api.get_run(run_id))["state"] == "pending"

    async def test_tampered_body_is_401(
        self, api: RunsApi, pipeline: Pipeline, anonymous: httpx.AsyncClient
    ) -> None:
        run_id = await fired(api)
        _, headers = signed({"state": "running"}, key=await pipeline.key(run_id))
        r = await anonymous.post(
            f"/v1/runs/{run_id}:callback", content=b'{"state": "failed"}', headers=headers
        )
        problem(r, 401)

    async def test_unknown_run_is_404(self, pipeline: Pipeline) -> None:
        key = pipeline_key(CALLBACK_SECRET, "retrigger-run-987654-000000")
        problem(await pipeline.report(987654, {"state": "running"}, key=key), 404)

    async def test_without_a_callback_secret_signed_callbacks_are_401(
        self, api: RunsApi, pipeline: Pipeline, app: FastAPI
    ) -> None:
        run_id = await fired(api)
        key = await pipeline.key(run_id)
        app.state.settings = app.state.settings.model_copy(update={"callback_secret": None})
        r = await pipeline.report(run_id, {"state": "running"}, key=key)
        assert "RETRIGGER_CALLBACK_SECRET" in problem(r, 401)["detail"]

    async def test_repeated_and_late_callbacks_change_no_state(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api)
        for body in ({"state": "succeeded"}, {"state": "succeeded"}, {"state": "running"}):
            r = await pipeline.report(run_id, body)
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "succeeded"
        run = await api.get_run(run_id)
        assert [t["to"] for t in run["transitions"]] == ["pending", "submitted", "succeeded"]

    async def test_contradicting_a_final_state_is_409(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api)
        await pipeline.report(run_id, {"state": "succeeded"})
        problem(await pipeline.report(run_id, {"state": "failed", "detail": "oom"}), 409)
        assert (await api.get_run(run_id))["state"] == "succeeded"

    async def test_run_awaiting_approval_cannot_be_reported(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api, require_approval=True)
        problem(await pipeline.report(run_id, {"state": "running"}), 409)

    async def test_bad_state_is_422_naming_the_field(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api)
        for state in ("pending", "exploded"):
            r = await pipeline.report(run_id, {"state": state})
            assert problem(r, 422)["errors"][0]["loc"] == ["body", "state"]


class TestWriteKeyCallbacks:
    async def test_unsigned_needs_a_write_key_of_the_runs_team(
        self, api: RunsApi, anonymous: httpx.AsyncClient, session: AsyncSession
    ) -> None:
        run_id = await fired(api)
        body = {"state": "running"}
        url = f"/v1/runs/{run_id}:callback"
        problem(await anonymous.post(url, json=body), 401)
        reader = await create_key(session, scopes=[Scope.read])
        headers = {"Authorization": f"Bearer {reader}"}
        problem(await anonymous.post(url, json=body, headers=headers), 403)
        stranger = await create_key(session, scopes=[Scope.write], team=await create_team(session))
        headers = {"Authorization": f"Bearer {stranger}"}
        problem(await anonymous.post(url, json=body, headers=headers), 404)
        assert (await api.get_run(run_id))["state"] == "pending"
        ml = (await session.execute(select(Team).where(Team.name == "ml"))).scalar_one()
        member = await create_key(session, scopes=[Scope.write], team=ml)
        headers = {"Authorization": f"Bearer {member}"}
        r = await anonymous.post(url, json=body, headers=headers)
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "running"
        assert r.json()["transitions"][-1]["actor"] not in ("callback", "anonymous")


class TestProgressAndMetrics:
    async def test_progress_reports_in_the_same_state_are_stored(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api)
        epoch1 = {"state": "running", "metrics": {"loss": 0.5}, "detail": "epoch 1"}
        epoch2 = {
            "state": "running",
            "metrics": {"loss": 0.3, "accuracy": 0.8},
            "detail": "epoch 2",
            "outputs": {"checkpoint": "s3://models/p/2"},
        }
        for body in (epoch1, epoch2):
            r = await pipeline.report(run_id, body)
            assert r.status_code == 200, r.text
        run = await api.get_run(run_id)
        assert run["status_detail"] == "epoch 2"
        assert run["outputs"] == {
            "metrics": {"loss": 0.3, "accuracy": 0.8},
            "checkpoint": "s3://models/p/2",
        }
        assert [t["to"] for t in run["transitions"]] == ["pending", "submitted", "running"]

    async def test_outputs_metrics_is_reserved(self, api: RunsApi, pipeline: Pipeline) -> None:
        run_id = await fired(api)
        r = await pipeline.report(run_id, {"state": "running", "outputs": {"metrics": "oops"}})
        assert problem(r, 422)["errors"][0]["loc"] == ["body", "outputs", "metrics"]
        assert (await api.get_run(run_id))["state"] == "pending"

    async def test_metrics_must_be_finite_numbers(self, api: RunsApi, pipeline: Pipeline) -> None:
        run_id = await fired(api)
        r = await pipeline.report(run_id, {"state": "running", "metrics": {"auc": "high"}})
        assert problem(r, 422)["errors"][0]["loc"] == ["body", "metrics", "auc"]

    async def test_a_stored_non_object_metrics_is_replaced_not_a_500(
        self, api: RunsApi, pipeline: Pipeline, session: AsyncSession
    ) -> None:
        run_id = await fired(api)
        # what a callback could store before ``outputs.metrics`` was reserved
        await session.execute(
            update(Run).where(Run.id == run_id).values(outputs={"metrics": "oops", "x": 1})
        )
        await session.commit()
        r = await pipeline.report(run_id, {"state": "succeeded", "metrics": {"auc": 0.9}})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"] == {"metrics": {"auc": 0.9}, "x": 1}

    async def test_a_late_progress_report_leaves_the_final_numbers(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api)
        await pipeline.report(run_id, {"state": "succeeded", "metrics": {"loss": 0.1}})
        r = await pipeline.report(run_id, {"state": "running", "metrics": {"loss": 0.9}})
        assert r.status_code == 200, r.text
        assert r.json()["outputs"]["metrics"] == {"loss": 0.1}

    async def test_a_final_report_may_complete_but_not_contradict_the_model_version(
        self, api: RunsApi, pipeline: Pipeline
    ) -> None:
        run_id = await fired(api)
        # e.g. the poller saw the success first; the pipeline's report then brings the version
        r = await api.http.post(f"/v1/runs/{run_id}:callback", json={"state": "succeeded"})
        assert r.status_code == 200, r.text
        done = {"state": "succeeded", "model_version": "v7", "metrics": {"auc": 0.9}}
        r = await pipeline.report(run_id, done)
        assert r.status_code == 200, r.text
        assert (r.json()["model_version"], r.json()["outputs"]["metrics"]) == ("v7", {"auc": 0.9})
        assert (await pipeline.report(run_id, done)).status_code == 200
        conflicting = {"state": "succeeded", "model_version": "v8"}
        assert "v7" in problem(await pipeline.report(run_id, conflicting), 409)["detail"]
        run = await api.get_run(run_id)
        assert run["model_version"] == "v7"
        assert [t["to"] for t in run["transitions"]] == ["pending", "submitted", "succeeded"]
