"""Kubeflow Pipelines adapter against a fake of the documented v2beta1 REST API."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from retrigger.dispatch.orchestrators.base import AuthType, Orchestrator, RetrainRequest, RunState
from retrigger.dispatch.orchestrators.kubeflow import KubeflowOptions
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable
from tests.dispatch.orchestrators import helpers
from tests.dispatch.orchestrators.helpers import answering
from tests.dispatch.orchestrators.servers import connected
from tests.dispatch.orchestrators.servers.kubeflow import TOKEN, KubeflowServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

RUNS = "/pipeline/apis/v2beta1/runs"
CONTEXT = {**helpers.CONTEXT, **helpers.WINDOW, "reference_version": 3, "model_version": None}


def retrain(pipeline: str = "pl-fraud", key: str = helpers.KEY) -> RetrainRequest:
    parameters = {"epochs": 3, "features": ["a", "b"]}
    return helpers.retrain(pipeline, parameters, key=key, context=CONTEXT)


@pytest.fixture
def server() -> KubeflowServer:
    return KubeflowServer()


class TestSubmit:
    async def test_looks_up_then_creates_the_run(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())

        lookup, create = server.requests
        assert (lookup.method, lookup.url.path) == ("GET", RUNS)
        assert json.loads(lookup.url.params["filter"]) == {
            "predicates": [
                {"key": "display_name", "operation": "EQUALS", "string_value": "retrigger-run-42"}
            ]
        }
        assert lookup.url.params["namespace"] == "ml"
        assert lookup.url.params["experiment_id"] == "exp-1"
        assert (create.method, create.url.path) == ("POST", RUNS)
        body = json.loads(create.content)
        assert body.pop("description").startswith("retrigger retrigger-run-42: {")
        assert body == {
            "display_name": "retrigger-run-42",
            "experiment_id": "exp-1",
            "pipeline_version_reference": {"pipeline_id": "pl-fraud"},
            "runtime_config": {"parameters": {"epochs": 3, "features": ["a", "b"]}},
        }
        (run_id,) = server.runs
        assert ref.external_id == run_id
        assert ref.url == f"http://kfp.test/pipeline/#/runs/details/{run_id}"
        assert ref.data == {"display_name": "retrigger-run-42"}

    async def test_every_request_carries_the_bearer_token(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        await adapter.get_status(ref)
        assert {r.headers["authorization"] for r in server.requests} == {f"Bearer {TOKEN}"}

    async def test_pipeline_version_is_referenced(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        await adapter.submit(retrain("pl-fraud/pv-2"))
        body = json.loads(server.requests[-1].content)
        assert body["pipeline_version_reference"] == {
            "pipeline_id": "pl-fraud",
            "pipeline_version_id": "pv-2",
        }

    async def test_existing_run_named_after_the_key_is_returned(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        first = await adapter.submit(retrain())
        server.requests.clear()
        again = await adapter.submit(retrain())
        assert again == first
        assert [r.method for r in server.requests] == ["GET"]
        assert server.launched == 1

    async def test_a_similar_name_is_not_the_same_run(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        await adapter.submit(retrain(key="retrigger-run-4"))
        await adapter.submit(retrain(key="retrigger-run-42"))
        assert server.launched == 2

    async def test_context_parameters_are_opt_in(self) -> None:
        server = KubeflowServer(KubeflowOptions(context_parameters=True))
        async with connected(server) as adapter:
            await adapter.submit(retrain())
        parameters = json.loads(server.requests[-1].content)["runtime_config"]["parameters"]
        assert parameters == {
            "epochs": 3,
            "features": ["a", "b"],
            "retrigger_product": "fraud-scorer",
            "retrigger_decision_id": 7,
            "retrigger_run_id": 42,
            "retrigger_reasons": ["data_drift"],
            "retrigger_window_start": "2024-05-01T00:00:00Z",
            "retrigger_window_end": "2024-05-08T00:00:00Z",
            "retrigger_reference_version": 3,
        }

    @pytest.mark.parametrize("pipeline", ["", "/pv-1", "a/b/c"])
    async def test_malformed_pipeline_ref_is_rejected(
        self, server: KubeflowServer, adapter: Orchestrator, pipeline: str
    ) -> None:
        with pytest.raises(OrchestratorRejected, match="pipeline_id"):
            await adapter.submit(retrain(pipeline))
        assert server.requests == []

    async def test_unknown_pipeline_is_rejected(self, adapter: Orchestrator) -> None:
        with pytest.raises(OrchestratorRejected, match="404"):
            await adapter.submit(retrain("pl-unknown"))


class TestStatus:
    @pytest.mark.parametrize(
        ("remote", "state"),
        [
            ("RUNTIME_STATE_UNSPECIFIED", RunState.QUEUED),
            ("PENDING", RunState.QUEUED),
            ("RUNNING", RunState.RUNNING),
            ("CANCELING", RunState.RUNNING),
            ("PAUSED", RunState.RUNNING),
            ("SUCCEEDED", RunState.SUCCEEDED),
            ("SKIPPED", RunState.SUCCEEDED),
            ("FAILED", RunState.FAILED),
            ("CANCELED", RunState.CANCELLED),
        ],
    )
    async def test_maps_every_kfp_state(
        self,
        server: KubeflowServer,
        adapter: Orchestrator,
        remote: str,
        state: RunState,
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_state(ref.external_id, remote)
        status = await adapter.get_status(ref)
        assert status.state is state
        assert server.requests[-1].url.path == f"{RUNS}/{ref.external_id}"

    async def test_unknown_state_is_running_with_the_raw_state(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_state(ref.external_id, "HIBERNATING")
        status = await adapter.get_status(ref)
        assert status.state is RunState.RUNNING
        assert "HIBERNATING" in status.detail

    async def test_missing_state_is_queued(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        del server.runs[ref.external_id]["state"]  # proto3 JSON omits the zero enum value
        assert (await adapter.get_status(ref)).state is RunState.QUEUED

    async def test_failure_detail_carries_the_error(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_state(ref.external_id, "FAILED")
        server.runs[ref.external_id]["error"] = {"code": 2, "message": "OOMKilled in train"}
        status = await adapter.get_status(ref)
        assert status.detail == "FAILED: OOMKilled in train"


class TestCancel:
    async def test_terminates_a_running_run(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_state(ref.external_id, "RUNNING")
        await adapter.cancel(ref)
        terminate = server.requests[-1]
        assert terminate.method == "POST"
        assert terminate.url.path == f"{RUNS}/{ref.external_id}:terminate"
        assert server.runs[ref.external_id]["state"] == "CANCELED"

    async def test_finished_run_is_left_alone(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_state(ref.external_id, "SUCCEEDED")
        await adapter.cancel(ref)
        assert not any(r.url.path.endswith(":terminate") for r in server.requests)

    async def test_run_ending_during_cancel_is_no_error(
        self, server: KubeflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        path = f"{RUNS}/{ref.external_id}:terminate"

        def finish_first(request: httpx.Request) -> httpx.Response:
            if request.url.path == path:
                server.set_state(ref.external_id, "SUCCEEDED")
            return server.handler(request)

        async with connected(server, finish_first) as racing:
            await racing.cancel(ref)
        assert server.runs[ref.external_id]["state"] == "SUCCEEDED"


class TestErrors:
    async def test_missing_token_is_rejected(self, server: KubeflowServer) -> None:
        anonymous = replace(server.connection, auth=AuthType.NONE, secret=None)
        async with connected(server, connection=anonymous) as adapter:
            with pytest.raises(OrchestratorRejected, match="401"):
                await adapter.submit(retrain())
        assert "authorization" not in server.requests[-1].headers

    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(200, text="<html>login</html>"),
            httpx.Response(200, json=["not", "an", "object"]),
            httpx.Response(200, json={"runs": [{"display_name": "retrigger-run-42"}]}),
        ],
    )
    async def test_malformed_list_is_unavailable(
        self, server: KubeflowServer, answer: httpx.Response
    ) -> None:
        async with connected(server, answering(server, "GET", RUNS, answer)) as adapter:
            with pytest.raises(OrchestratorUnavailable, match="malformed"):
                await adapter.submit(retrain())
        assert server.launched == 0

    async def test_created_run_without_id_is_unavailable(self, server: KubeflowServer) -> None:
        answer = httpx.Response(200, json={"display_name": "retrigger-run-42"})
        async with connected(server, answering(server, "POST", RUNS, answer)) as adapter:
            with pytest.raises(OrchestratorUnavailable, match="run_id"):
                await adapter.submit(retrain())
