"""GitHub Actions adapter against a fake of the documented REST API (dispatch, runs, cancel)."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import httpx
import pytest
import pytest_asyncio

from retrigger.dispatch.orchestrators.base import RetrainRequest, RunRef, RunState, make_client
from retrigger.dispatch.orchestrators.github_actions import (
    GitHubActionsOptions,
    GitHubActionsOrchestrator,
)
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable
from tests.dispatch.orchestrators.servers.github_actions import (
    REPO,
    TOKEN,
    GitHubActionsServer,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

Handler = Callable[[httpx.Request], httpx.Response]
WORKFLOW = f"/repos/{REPO}/actions/workflows/retrain.yml"
CONTEXT = {"product": "fraud-scorer", "decision_id": 7, "run_id": 42, "reasons": ["data_drift"]}


def retrain(key: str = "retrigger-run-42", **parameters: Any) -> RetrainRequest:
    return RetrainRequest(
        idempotency_key=key,
        run_id=42,
        product="fraud-scorer",
        pipeline="retrain.yml",
        parameters=parameters or {"epochs": 3, "learning_rate": "0.01"},
        decision_id=7,
        reasons=("data_drift",),
        context=CONTEXT,
    )


def options(**overrides: Any) -> GitHubActionsOptions:
    return GitHubActionsOptions(repository=REPO, **overrides)


def build(server: GitHubActionsServer, handler: Handler | None = None) -> GitHubActionsOrchestrator:
    transport = httpx.MockTransport(handler or server.handler)
    client = make_client(GitHubActionsOrchestrator, server.connection, transport=transport)
    return GitHubActionsOrchestrator(server.connection, client)


@pytest.fixture
def server() -> GitHubActionsServer:
    return GitHubActionsServer()


@pytest_asyncio.fixture(loop_scope="session")
async def adapter(server: GitHubActionsServer) -> AsyncIterator[GitHubActionsOrchestrator]:
    orchestrator = build(server)
    yield orchestrator
    await orchestrator.http.aclose()


class TestSubmit:
    async def test_looks_up_then_dispatches_with_run_details(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        ref = await adapter.submit(retrain())

        lookup, dispatch = server.requests
        assert (lookup.method, lookup.url.path) == ("GET", f"{WORKFLOW}/runs")
        assert dict(lookup.url.params) == {"event": "workflow_dispatch", "per_page": "100"}
        assert (dispatch.method, dispatch.url.path) == ("POST", f"{WORKFLOW}/dispatches")
        assert json.loads(dispatch.content) == {
            "ref": "main",
            "inputs": {
                "epochs": "3",
                "learning_rate": "0.01",
                "retrigger_run_key": "retrigger-run-42",
            },
            "return_run_details": True,
        }
        for request in server.requests:
            assert request.headers["authorization"] == f"Bearer {TOKEN}"
            assert request.headers["accept"] == "application/vnd.github+json"
            assert request.headers["x-github-api-version"] == "2022-11-28"
        assert ref == RunRef(
            "9000",
            f"https://github.test/{REPO}/actions/runs/9000",
            {"resolved": True, "key": "retrigger-run-42", "workflow": "retrain.yml"},
        )

    async def test_without_run_details_the_run_is_looked_up(self) -> None:
        server = GitHubActionsServer(options(return_run_details=False, ref="release"))
        adapter = build(server)
        ref = await adapter.submit(retrain())
        dispatch = server.requests[1]
        assert json.loads(dispatch.content)["ref"] == "release"
        assert "return_run_details" not in json.loads(dispatch.content)
        assert [r.method for r in server.requests] == ["GET", "POST", "GET"]
        assert (ref.external_id, ref.data["resolved"]) == ("9000", True)
        await adapter.http.aclose()

    async def test_existing_run_titled_with_the_key_is_returned(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        first = await adapter.submit(retrain())
        server.requests.clear()
        assert await adapter.submit(retrain()) == first
        assert [r.method for r in server.requests] == ["GET"]
        assert server.launched == 1

    async def test_a_longer_key_in_a_title_is_not_a_match(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        await adapter.submit(retrain("retrigger-run-42"))
        await adapter.submit(retrain("retrigger-run-4"))
        assert server.launched == 2

    async def test_values_are_strings_and_context_input_is_opt_in(self) -> None:
        server = GitHubActionsServer(options(context_input="retrigger_context"), inputs=None)
        adapter = build(server)
        await adapter.submit(retrain(epochs=3, grid={"depth": [4]}, name="xgb"))
        inputs = json.loads(server.requests[1].content)["inputs"]
        assert inputs.pop("retrigger_context") == json.dumps(CONTEXT, sort_keys=True)
        assert inputs == {
            "epochs": "3",
            "grid": '{"depth": [4]}',
            "name": "xgb",
            "retrigger_run_key": "retrigger-run-42",
        }
        await adapter.http.aclose()

    async def test_more_than_25_inputs_are_rejected_before_any_call(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        request = replace(retrain(), parameters={f"p{i}": i for i in range(25)})
        with pytest.raises(OrchestratorRejected, match="at most 25"):
            await adapter.submit(request)
        assert [r.method for r in server.requests] == ["GET"]

    async def test_undeclared_input_is_rejected(self, adapter: GitHubActionsOrchestrator) -> None:
        with pytest.raises(OrchestratorRejected, match="422"):
            await adapter.submit(retrain(surprise=1))

    async def test_details_answer_without_run_id_still_never_dispatches_twice(
        self, server: GitHubActionsServer
    ) -> None:
        def no_details(request: httpx.Request) -> httpx.Response:
            answer = server.handler(request)
            if request.url.path.endswith("/dispatches"):
                return httpx.Response(200, text="ok")
            return answer

        adapter = build(server, no_details)
        ref = await adapter.submit(retrain())
        assert ref.external_id == "9000"
        await adapter.http.aclose()


class TestLateRun:
    """A dispatch without run details whose run is not listed yet."""

    @pytest.fixture
    def server(self) -> GitHubActionsServer:
        server = GitHubActionsServer(options(return_run_details=False))
        server.hide_runs = True
        return server

    async def test_ref_is_unresolved_then_followed(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        assert ref.external_id == "retrigger-run-42"
        assert ref.data["resolved"] is False
        status = await adapter.get_status(ref)
        assert status.state is RunState.QUEUED
        server.reveal()
        server.set_state(9000, "in_progress")
        status = await adapter.get_status(ref)
        assert (status.state, status.detail) == (RunState.RUNNING, "run 9000: in_progress")
        assert server.requests[-1].url.params["created"].startswith(">=20")

    async def test_repeat_before_the_run_is_listed_dispatches_nothing(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        first = await adapter.submit(retrain())
        assert await adapter.submit(retrain()) == first
        assert server.launched == 1

    async def test_run_that_never_appears_fails(self, adapter: GitHubActionsOrchestrator) -> None:
        data = {
            "resolved": False,
            "key": "retrigger-run-7",
            "workflow": "retrain.yml",
            "dispatched_at": time.time() - 3600,
        }
        status = await adapter.get_status(RunRef("retrigger-run-7", data=data))
        assert status.state is RunState.FAILED

    async def test_cancel_before_the_run_is_listed_is_retryable(
        self, adapter: GitHubActionsOrchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        with pytest.raises(OrchestratorUnavailable, match="not listed yet"):
            await adapter.cancel(ref)

    async def test_cancel_once_listed(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.reveal()
        await adapter.cancel(ref)
        assert server.requests[-1].url.path == f"/repos/{REPO}/actions/runs/9000/cancel"
        assert server.runs[9000]["conclusion"] == "cancelled"


class TestStatus:
    @pytest.mark.parametrize(
        ("status", "conclusion", "state"),
        [
            ("queued", None, RunState.QUEUED),
            ("requested", None, RunState.QUEUED),
            ("waiting", None, RunState.QUEUED),
            ("pending", None, RunState.QUEUED),
            ("in_progress", None, RunState.RUNNING),
            ("completed", "success", RunState.SUCCEEDED),
            ("completed", "neutral", RunState.SUCCEEDED),
            ("completed", "failure", RunState.FAILED),
            ("completed", "timed_out", RunState.FAILED),
            ("completed", "startup_failure", RunState.FAILED),
            ("completed", "action_required", RunState.FAILED),
            ("completed", "stale", RunState.FAILED),
            ("completed", "cancelled", RunState.CANCELLED),
            ("completed", "skipped", RunState.CANCELLED),
        ],
    )
    async def test_maps_every_status_and_conclusion(
        self,
        server: GitHubActionsServer,
        adapter: GitHubActionsOrchestrator,
        status: str,
        conclusion: str | None,
        state: RunState,
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_state(int(ref.external_id), status, conclusion)
        assert (await adapter.get_status(ref)).state is state
        assert server.requests[-1].url.path == f"/repos/{REPO}/actions/runs/9000"

    @pytest.mark.parametrize(
        ("status", "conclusion"), [("hibernating", None), ("completed", "odd")]
    )
    async def test_unknown_values_are_running_with_the_raw_value(
        self,
        server: GitHubActionsServer,
        adapter: GitHubActionsOrchestrator,
        status: str,
        conclusion: str | None,
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_state(int(ref.external_id), status, conclusion)
        result = await adapter.get_status(ref)
        assert result.state is RunState.RUNNING
        assert (conclusion or status) in result.detail


class TestCancel:
    async def test_cancels_the_run(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        await adapter.cancel(ref)
        cancel = server.requests[-1]
        assert (cancel.method, cancel.url.path) == (
            "POST",
            f"/repos/{REPO}/actions/runs/9000/cancel",
        )
        assert (await adapter.get_status(ref)).state is RunState.CANCELLED

    async def test_completed_run_conflict_is_no_error(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.finish(ref.external_id, RunState.SUCCEEDED)
        await adapter.cancel(ref)
        assert (await adapter.get_status(ref)).state is RunState.SUCCEEDED


class TestErrors:
    @pytest.mark.parametrize("status", [500, 502, 503])
    async def test_5xx_is_unavailable(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator, status: int
    ) -> None:
        server.fail_next(status)
        with pytest.raises(OrchestratorUnavailable):
            await adapter.submit(retrain())

    @pytest.mark.parametrize("status", [403, 429])
    async def test_rate_limit_with_retry_after(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator, status: int
    ) -> None:
        server.fail_next(status, headers={"retry-after": "42"})
        with pytest.raises(OrchestratorUnavailable) as caught:
            await adapter.submit(retrain())
        assert caught.value.retry_after == 42

    async def test_exhausted_primary_limit_waits_for_the_reset(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator
    ) -> None:
        reset = str(int(time.time()) + 600)
        server.fail_next(403, headers={"x-ratelimit-remaining": "0", "x-ratelimit-reset": reset})
        with pytest.raises(OrchestratorUnavailable) as caught:
            await adapter.submit(retrain())
        assert caught.value.retry_after is not None
        assert 0 < caught.value.retry_after <= 600

    async def test_secondary_limit_without_headers_is_retryable(
        self, server: GitHubActionsServer
    ) -> None:
        answer = httpx.Response(403, json={"message": "You have exceeded a secondary rate limit."})
        adapter = build(server, lambda request: answer)
        with pytest.raises(OrchestratorUnavailable) as caught:
            await adapter.submit(retrain())
        assert caught.value.retry_after == 60
        await adapter.http.aclose()

    @pytest.mark.parametrize("status", [401, 403, 404, 422])
    async def test_4xx_is_rejected(
        self, server: GitHubActionsServer, adapter: GitHubActionsOrchestrator, status: int
    ) -> None:
        server.fail_next(status)
        with pytest.raises(OrchestratorRejected):
            await adapter.submit(retrain())

    async def test_timeout_is_unavailable(self, server: GitHubActionsServer) -> None:
        def slow(request: httpx.Request) -> httpx.Response:
            raise httpx.ReadTimeout("slow", request=request)

        adapter = build(server, slow)
        with pytest.raises(OrchestratorUnavailable, match="timed out"):
            await adapter.submit(retrain())
        await adapter.http.aclose()

    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(200, text="<html>"),
            httpx.Response(200, json={"total_count": 0}),
            httpx.Response(200, json={"workflow_runs": [{"display_title": "retrigger-run-42"}]}),
        ],
    )
    async def test_malformed_2xx_is_unavailable(
        self, server: GitHubActionsServer, answer: httpx.Response
    ) -> None:
        adapter = build(server, lambda request: answer)
        with pytest.raises(OrchestratorUnavailable, match="malformed"):
            await adapter.submit(retrain())
        await adapter.http.aclose()
