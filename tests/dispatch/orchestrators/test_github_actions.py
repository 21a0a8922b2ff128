"""GitHub Actions adapter against a fake of the documented REST API (dispatch, runs, cancel)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from typing import Any

import httpx
import pytest

from retrigger.dispatch.orchestrators.base import Orchestrator, RetrainRequest, RunRef, RunState
from retrigger.dispatch.orchestrators.github_actions import GitHubActionsOptions
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable
from tests.dispatch.orchestrators import helpers
from tests.dispatch.orchestrators.helpers import CONTEXT
from tests.dispatch.orchestrators.servers import connected
from tests.dispatch.orchestrators.servers.github_actions import (
    REPO,
    TOKEN,
    GitHubActionsServer,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

WORKFLOW = f"/repos/{REPO}/actions/workflows/retrain.yml"


def retrain(key: str = helpers.KEY, **parameters: Any) -> RetrainRequest:
    return helpers.retrain(
        "retrain.yml", parameters or {"epochs": 3, "learning_rate": "0.01"}, key=key
    )


def options(**overrides: Any) -> GitHubActionsOptions:
    return GitHubActionsOptions(repository=REPO, **overrides)


@pytest.fixture
def server() -> GitHubActionsServer:
    return GitHubActionsServer()


class TestSubmit:
    async def test_looks_up_then_dispatches_with_run_details(
        self, server: GitHubActionsServer, adapter: Orchestrator
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
        async with connected(server) as adapter:
            ref = await adapter.submit(retrain())
        dispatch = server.requests[1]
        assert json.loads(dispatch.content)["ref"] == "release"
        assert "return_run_details" not in json.loads(dispatch.content)
        assert [r.method for r in server.requests] == ["GET", "POST", "GET"]
        assert (ref.external_id, ref.data["resolved"]) == ("9000", True)

    async def test_existing_run_titled_with_the_key_is_returned(
        self, server: GitHubActionsServer, adapter: Orchestrator
    ) -> None:
        first = await adapter.submit(retrain())
        server.requests.clear()
        assert await adapter.submit(retrain()) == first
        assert [r.method for r in server.requests] == ["GET"]
        assert server.launched == 1

    async def test_a_longer_key_in_a_title_is_not_a_match(
        self, server: GitHubActionsServer, adapter: Orchestrator
    ) -> None:
        await adapter.submit(retrain("retrigger-run-42"))
        await adapter.submit(retrain("retrigger-run-4"))
        assert server.launched == 2

    async def test_values_are_strings_and_context_input_is_opt_in(self) -> None:
        server = GitHubActionsServer(options(context_input="retrigger_context"), inputs=None)
        async with connected(server) as adapter:
            await adapter.submit(retrain(epochs=3, grid={"depth": [4]}, name="xgb"))
        inputs = json.loads(server.requests[1].content)["inputs"]
        assert inputs.pop("retrigger_context") == json.dumps(CONTEXT, sort_keys=True)
        assert inputs == {
            "epochs": "3",
            "grid": '{"depth": [4]}',
            "name": "xgb",
            "retrigger_run_key": "retrigger-run-42",
        }

    async def test_more_than_25_inputs_are_rejected_before_any_call(
        self, server: GitHubActionsServer, adapter: Orchestrator
    ) -> None:
        request = replace(retrain(), parameters={f"p{i}": i for i in range(25)})
        with pytest.raises(OrchestratorRejected, match="at most 25"):
            await adapter.submit(request)
        assert [r.method for r in server.requests] == ["GET"]

    async def test_undeclared_input_is_rejected(self, adapter: Orchestrator) -> None:
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

        async with connected(server, no_details) as adapter:
            ref = await adapter.submit(retrain())
        assert ref.external_id == "9000"


class TestLateRun:
    """A dispatch without run details whose run is not listed yet."""

    @pytest.fixture
    def server(self) -> GitHubActionsServer:
        server = GitHubActionsServer(options(return_run_details=False))
        server.hide_runs = True
        return server

    async def test_ref_is_unresolved_then_followed(
        self, server: GitHubActionsServer, adapter: Orchestrator
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
        # the poll hands back the resolved ref, which the poller stores: later polls go direct
        assert status.ref is not None
        assert (status.ref.external_id, status.ref.data["resolved"]) == ("9000", True)
        assert str(status.ref.url).endswith("/runs/9000")
        server.set_state(9000, "completed", "success")
        assert (await adapter.get_status(status.ref)).state is RunState.SUCCEEDED
        assert server.requests[-1].url.path == f"/repos/{REPO}/actions/runs/9000"

    async def test_repeat_before_the_run_is_listed_dispatches_nothing(
        self, server: GitHubActionsServer, adapter: Orchestrator
    ) -> None:
        first = await adapter.submit(retrain())
        assert await adapter.submit(retrain()) == first
        assert server.launched == 1

    async def test_run_that_never_appears_fails(self, adapter: Orchestrator) -> None:
        data = {
            "resolved": False,
            "key": "retrigger-run-7",
            "workflow": "retrain.yml",
            "dispatched_at": time.time() - 3600,
        }
        status = await adapter.get_status(RunRef("retrigger-run-7", data=data))
        assert status.state is RunState.FAILED

    async def test_cancel_before_the_run_is_listed_is_retryable(
        self, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        with pytest.raises(OrchestratorUnavailable, match="not listed yet"):
            await adapter.cancel(ref)

    async def test_cancel_once_listed(
        self, server: GitHubActionsServer, adapter: Orchestrator
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
        adapter: Orchestrator,
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
        adapter: Orchestrator,
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
        self, server: GitHubActionsServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        await adapter.cancel(ref)
        cancel = server.requests[-1]
        assert (cancel.method, cancel.url.path) == (
            "POST",
            f"/repos/{REPO}/actions/runs/9000/cancel",
        )
        assert (await adapter.get_status(ref)).state is RunState.CANCELLED


class TestErrors:
    async def test_403_with_retry_after_is_a_rate_limit(
        self, server: GitHubActionsServer, adapter: Orchestrator
    ) -> None:
        server.fail_next(403, headers={"retry-after": "42"})
        with pytest.raises(OrchestratorUnavailable) as caught:
            await adapter.submit(retrain())
        assert caught.value.retry_after == 42

    async def test_exhausted_primary_limit_waits_for_the_reset(
        self, server: GitHubActionsServer, adapter: Orchestrator
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
        async with connected(server, lambda request: answer) as adapter:
            with pytest.raises(OrchestratorUnavailable) as caught:
                await adapter.submit(retrain())
        assert caught.value.retry_after == 60

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
        async with connected(server, lambda request: answer) as adapter:
            with pytest.raises(OrchestratorUnavailable, match="malformed"):
                await adapter.submit(retrain())
