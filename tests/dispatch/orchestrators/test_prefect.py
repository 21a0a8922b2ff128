"""The Prefect adapter against a fake of Prefect 3's documented REST API."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    Orchestrator,
    RetrainRequest,
    RunRef,
    RunState,
)
from retrigger.dispatch.orchestrators.prefect import PrefectOptions, PrefectOrchestrator
from retrigger.errors import InvalidConfig, OrchestratorRejected, OrchestratorUnavailable
from tests.dispatch.orchestrators import helpers
from tests.dispatch.orchestrators.helpers import CONTEXT, calls
from tests.dispatch.orchestrators.servers import connected
from tests.dispatch.orchestrators.servers.prefect import (
    API_KEY,
    DEPLOYMENT_ID,
    PrefectServer,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

REQUEST = helpers.retrain("train-fraud-scorer/nightly", {"epochs": 3})


@pytest.fixture
def server() -> PrefectServer:
    return PrefectServer()


async def submitted_ref(server: PrefectServer, **connection: Any) -> RunRef:
    """Submit through a fresh adapter, its connection changed as given; the ref it returns."""
    async with connected(server, connection=replace(server.connection, **connection)) as adapter:
        return await adapter.submit(REQUEST)


async def submit_with(server: PrefectServer, **connection: Any) -> dict[str, Any]:
    """Like :func:`submitted_ref`; the JSON body of create_flow_run."""
    await submitted_ref(server, **connection)
    create = next(r for r in server.requests if r.url.path.endswith("/create_flow_run"))
    body: dict[str, Any] = json.loads(create.content)
    return body


class TestSubmit:
    async def test_resolves_the_name_and_creates_a_flow_run(
        self, server: PrefectServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)

        assert calls(server) == [
            ("GET", "/api/deployments/name/train-fraud-scorer/nightly"),
            ("POST", f"/api/deployments/{DEPLOYMENT_ID}/create_flow_run"),
        ]
        assert all(r.headers["authorization"] == f"Bearer {API_KEY}" for r in server.requests)
        assert json.loads(server.requests[1].content) == {
            "parameters": {"epochs": 3, "retrigger": CONTEXT},
            "idempotency_key": "retrigger-run-42",
            "tags": ["retrigger", "product:fraud-scorer"],
        }
        (run_id,) = server.flow_runs
        assert ref == RunRef(
            external_id=run_id,
            url=f"http://prefect.test:4200/runs/flow-run/{run_id}",
            data={"deployment_id": DEPLOYMENT_ID},
        )

    async def test_deployment_id_is_read_directly(
        self, server: PrefectServer, adapter: Orchestrator
    ) -> None:
        by_id = RetrainRequest("retrigger-run-1", 1, "fraud-scorer", DEPLOYMENT_ID, {})
        await adapter.submit(by_id)
        assert calls(server)[0] == ("GET", f"/api/deployments/{DEPLOYMENT_ID}")

    async def test_null_context_parameter_sends_no_context(self) -> None:
        body = await submit_with(PrefectServer(options=PrefectOptions(context_parameter=None)))
        assert body["parameters"] == {"epochs": 3}

    async def test_context_is_left_out_when_the_flow_does_not_declare_it(self) -> None:
        schema = {"type": "object", "properties": {"epochs": {"type": "integer"}}}
        body = await submit_with(PrefectServer(schema=schema))
        assert body["parameters"] == {"epochs": 3}

    async def test_context_is_sent_when_there_is_no_schema(self) -> None:
        body = await submit_with(PrefectServer(schema=None))
        assert body["parameters"] == {"epochs": 3, "retrigger": CONTEXT}

    async def test_custom_context_parameter_and_tags(self) -> None:
        server = PrefectServer(
            schema=None, options=PrefectOptions(context_parameter="ctx", tags=("team:risk",))
        )
        body = await submit_with(server)
        assert body["parameters"] == {"epochs": 3, "ctx": CONTEXT}
        assert body["tags"] == ["retrigger", "product:fraud-scorer", "team:risk"]

    @pytest.mark.parametrize("pipeline", ["nightly", "a/b/c", "/nightly", "flow/"])
    async def test_malformed_pipeline_is_rejected_without_a_call(
        self, server: PrefectServer, adapter: Orchestrator, pipeline: str
    ) -> None:
        with pytest.raises(OrchestratorRejected, match="neither a deployment id"):
            await adapter.submit(RetrainRequest("k", 1, "p", pipeline, {}))
        assert server.requests == []

    async def test_unknown_deployment_is_rejected(
        self, server: PrefectServer, adapter: Orchestrator
    ) -> None:
        with pytest.raises(OrchestratorRejected, match="404"):
            await adapter.submit(RetrainRequest("k", 1, "p", "train-fraud-scorer/weekly", {}))
        assert server.launched == 0

    async def test_basic_auth_sends_the_server_auth_string(self) -> None:
        server = PrefectServer(auth=AuthType.NONE)
        await submit_with(server, auth=AuthType.BASIC, username="admin", secret=SecretStr("pass"))
        expected = base64.b64encode(b"admin:pass").decode()
        assert server.requests[0].headers["authorization"] == f"Basic {expected}"

    async def test_run_url_follows_the_ui_url_option(self) -> None:
        server = PrefectServer(options=PrefectOptions(ui_url="https://prefect.example/workspace/w"))
        ref = await submitted_ref(server)
        assert ref.url == f"https://prefect.example/workspace/w/runs/flow-run/{ref.external_id}"

    async def test_run_url_ignores_a_trailing_slash(self, server: PrefectServer) -> None:
        ref = await submitted_ref(server, base_url="http://prefect.test:4200/api/")
        assert ref.url == f"http://prefect.test:4200/runs/flow-run/{ref.external_id}"


class TestStatus:
    @pytest.mark.parametrize(
        ("raw", "state"),
        [
            ("SCHEDULED", RunState.QUEUED),
            ("PENDING", RunState.QUEUED),
            ("RUNNING", RunState.RUNNING),
            ("CANCELLING", RunState.RUNNING),
            ("PAUSED", RunState.RUNNING),
            ("COMPLETED", RunState.SUCCEEDED),
            ("FAILED", RunState.FAILED),
            ("CRASHED", RunState.FAILED),
            ("CANCELLED", RunState.CANCELLED),
        ],
    )
    async def test_maps_prefect_state_types(
        self, server: PrefectServer, adapter: Orchestrator, raw: str, state: RunState
    ) -> None:
        ref = await adapter.submit(REQUEST)
        server.set_state(ref.external_id, raw)
        server.requests.clear()
        status = await adapter.get_status(ref)
        assert status.state is state
        assert calls(server) == [("GET", f"/api/flow_runs/{ref.external_id}")]

    async def test_state_name_is_the_detail(
        self, server: PrefectServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)
        server.set_state(ref.external_id, "SCHEDULED", name="Late")
        status = await adapter.get_status(ref)
        assert (status.state, status.detail) == (RunState.QUEUED, "Late")

    async def test_unknown_state_type_is_running_with_the_raw_type(
        self, server: PrefectServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)
        server.set_state(ref.external_id, "AWAITING_SOMETHING")
        status = await adapter.get_status(ref)
        assert status.state is RunState.RUNNING
        assert "'AWAITING_SOMETHING'" in status.detail

    async def test_run_without_state_is_queued(
        self, server: PrefectServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)
        server.set_state(ref.external_id, None)
        assert (await adapter.get_status(ref)).state is RunState.QUEUED

    async def test_foreign_external_id_is_rejected(self, adapter: Orchestrator) -> None:
        with pytest.raises(OrchestratorRejected):
            await adapter.get_status(RunRef(external_id="../deployments"))


class TestCancel:
    async def test_requests_cancelling(self, server: PrefectServer, adapter: Orchestrator) -> None:
        ref = await adapter.submit(REQUEST)
        server.requests.clear()
        await adapter.cancel(ref)
        (set_state,) = server.requests
        assert (set_state.method, set_state.url.path) == (
            "POST",
            f"/api/flow_runs/{ref.external_id}/set_state",
        )
        assert json.loads(set_state.content) == {
            "state": {
                "type": "CANCELLING",
                "name": "Cancelling",
                "message": "Stopped by retrigger",
            },
            "force": False,
        }
        assert (await adapter.get_status(ref)).state is RunState.CANCELLED

    async def test_running_run_is_cancelling_until_its_worker_stops(
        self, server: PrefectServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)
        server.set_state(ref.external_id, "RUNNING")
        await adapter.cancel(ref)
        assert server.flow_runs[ref.external_id]["state_type"] == "CANCELLING"
        assert (await adapter.get_status(ref)).state is RunState.RUNNING

    async def test_malformed_orchestration_result_is_unavailable(
        self, server: PrefectServer
    ) -> None:
        ref = RunRef(external_id="0b7f6c2e-1f5e-4d4b-9f0e-3f6a0f9f1d22")
        async with connected(server, lambda request: httpx.Response(201, json=[])) as adapter:
            with pytest.raises(OrchestratorUnavailable, match="malformed"):
                await adapter.cancel(ref)


class TestErrors:
    async def test_409_is_rejected(self, server: PrefectServer, adapter: Orchestrator) -> None:
        server.fail_next(409)
        with pytest.raises(OrchestratorRejected):
            await adapter.submit(REQUEST)
        assert server.launched == 0

    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(200, content=b"Bad gateway, try later"),
            httpx.Response(200, json={"id": "not-a-uuid"}),
            httpx.Response(200, json=None),
        ],
    )
    async def test_malformed_2xx_is_unavailable(
        self, server: PrefectServer, answer: httpx.Response
    ) -> None:
        async with connected(server, lambda request: answer) as adapter:
            with pytest.raises(OrchestratorUnavailable, match="malformed"):
                await adapter.submit(REQUEST)


class TestOptions:
    async def test_defaults(self) -> None:
        options = PrefectOrchestrator.parse_options({})
        assert options.model_dump() == {
            "context_parameter": "retrigger",
            "tags": (),
            "ui_url": None,
        }

    @pytest.mark.parametrize(
        "options", [{"context_parameter": ""}, {"ui_url": "not a url"}, {"tag": ["x"]}]
    )
    async def test_invalid_options_are_refused(self, options: dict[str, object]) -> None:
        with pytest.raises(InvalidConfig):
            PrefectOrchestrator.parse_options(options)
