"""The Airflow adapter against a fake of Airflow's documented REST API (v2 and v1)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from retrigger.dispatch.orchestrators.airflow import (
    CANCEL_NOTE,
    AirflowJWTAuth,
    AirflowOrchestrator,
)
from retrigger.dispatch.orchestrators.base import (
    AuthType,
    Orchestrator,
    RetrainRequest,
    RunRef,
    RunState,
)
from retrigger.errors import InvalidConfig, OrchestratorRejected, OrchestratorUnavailable
from tests.dispatch.orchestrators import helpers
from tests.dispatch.orchestrators.helpers import CONTEXT, calls
from tests.dispatch.orchestrators.servers import connected
from tests.dispatch.orchestrators.servers.airflow import (
    BASE_URL,
    DAG_ID,
    PASSWORD,
    USERNAME,
    AirflowServer,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

REQUEST = helpers.retrain(DAG_ID, {"epochs": 3})
RUNS_PATH = f"/api/v2/dags/{DAG_ID}/dagRuns"


@pytest.fixture
def server() -> AirflowServer:
    return AirflowServer()


async def submitted(server: AirflowServer, adapter: Orchestrator) -> RunRef:
    return await helpers.submitted(server, adapter, REQUEST)


class TestSubmit:
    async def test_triggers_a_dag_run_with_key_and_context(
        self, server: AirflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)

        login, trigger = server.requests
        assert (login.method, login.url.path) == ("POST", "/auth/token")
        assert json.loads(login.content) == {"username": USERNAME, "password": PASSWORD}
        assert (trigger.method, trigger.url.path) == ("POST", RUNS_PATH)
        assert trigger.headers["authorization"] == "Bearer jwt-1"
        assert json.loads(trigger.content) == {
            "dag_run_id": "retrigger-run-42",
            "logical_date": None,
            "conf": {"epochs": 3, "retrigger": CONTEXT},
        }
        assert ref == RunRef(
            external_id="retrigger-run-42",
            url=f"{BASE_URL}/dags/{DAG_ID}/runs/retrigger-run-42",
            data={"dag_id": DAG_ID},
        )
        assert server.launched == 1

    async def test_duplicate_key_returns_the_existing_run(
        self, server: AirflowServer, adapter: Orchestrator
    ) -> None:
        first = await submitted(server, adapter)
        again = await adapter.submit(REQUEST)
        assert calls(server) == [("POST", RUNS_PATH), ("GET", f"{RUNS_PATH}/retrigger-run-42")]
        assert again == first
        assert server.launched == 1

    async def test_v1_posts_without_logical_date_and_basic_auth(self) -> None:
        server = AirflowServer(api_version="v1", auth=AuthType.BASIC)
        async with connected(server) as adapter:
            ref = await adapter.submit(REQUEST)

        (trigger,) = server.requests
        assert trigger.url.path == f"/api/v1/dags/{DAG_ID}/dagRuns"
        token = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
        assert trigger.headers["authorization"] == f"Basic {token}"
        assert json.loads(trigger.content) == {
            "dag_run_id": "retrigger-run-42",
            "conf": {"epochs": 3, "retrigger": CONTEXT},
        }
        assert ref.url == f"{BASE_URL}/dags/{DAG_ID}/grid?dag_run_id=retrigger-run-42"

    async def test_bearer_token_is_sent(self) -> None:
        server = AirflowServer(auth=AuthType.BEARER)
        async with connected(server) as adapter:
            await adapter.submit(REQUEST)
        assert server.requests[0].headers["authorization"] == f"Bearer {PASSWORD}"

    async def test_paused_dag_run_stays_queued_by_default(self) -> None:
        server = AirflowServer(paused=True)
        async with connected(server) as adapter:
            status = await adapter.get_status(await adapter.submit(REQUEST))
        assert "PATCH" not in {method for method, _ in calls(server)}
        assert server.dags[DAG_ID]["is_paused"] is True
        assert status.state is RunState.QUEUED

    async def test_unpause_option_unpauses_before_triggering(self) -> None:
        server = AirflowServer(paused=True, unpause=True)
        async with connected(server) as adapter:
            await adapter.submit(REQUEST)
        unpause, trigger = server.requests[1:]
        assert (unpause.method, unpause.url.path) == ("PATCH", f"/api/v2/dags/{DAG_ID}")
        assert unpause.url.params["update_mask"] == "is_paused"
        assert json.loads(unpause.content) == {"is_paused": False}
        assert trigger.url.path == RUNS_PATH
        assert server.dags[DAG_ID]["is_paused"] is False


class TestStatus:
    @pytest.mark.parametrize(
        ("raw", "state"),
        [
            ("queued", RunState.QUEUED),
            ("running", RunState.RUNNING),
            ("success", RunState.SUCCEEDED),
            ("failed", RunState.FAILED),
        ],
    )
    async def test_maps_airflow_states(
        self, server: AirflowServer, adapter: Orchestrator, raw: str, state: RunState
    ) -> None:
        ref = await submitted(server, adapter)
        server.set_state(ref.external_id, raw)
        status = await adapter.get_status(ref)
        assert status.state is state
        assert calls(server) == [("GET", f"{RUNS_PATH}/retrigger-run-42")]

    @pytest.mark.parametrize("raw", ["up_for_retry", None])
    async def test_unknown_state_is_running_with_the_raw_state(
        self, server: AirflowServer, adapter: Orchestrator, raw: str | None
    ) -> None:
        ref = await submitted(server, adapter)
        server.set_state(ref.external_id, raw)
        status = await adapter.get_status(ref)
        assert status.state is RunState.RUNNING
        assert repr(raw) in status.detail

    async def test_failed_with_our_note_is_cancelled(
        self, server: AirflowServer, adapter: Orchestrator
    ) -> None:
        ref = await submitted(server, adapter)
        server.set_state(ref.external_id, "failed", note=CANCEL_NOTE)
        assert (await adapter.get_status(ref)).state is RunState.CANCELLED

    async def test_ref_without_dag_id_is_rejected(self, adapter: Orchestrator) -> None:
        with pytest.raises(OrchestratorRejected, match="dag_id"):
            await adapter.get_status(RunRef(external_id="retrigger-run-42"))


class TestCancel:
    async def test_marks_the_run_failed_with_a_note(
        self, server: AirflowServer, adapter: Orchestrator
    ) -> None:
        ref = await submitted(server, adapter)
        await adapter.cancel(ref)
        run_path = f"{RUNS_PATH}/retrigger-run-42"
        assert calls(server) == [("GET", run_path), ("PATCH", run_path)]
        assert json.loads(server.requests[1].content) == {"state": "failed", "note": CANCEL_NOTE}
        assert (await adapter.get_status(ref)).state is RunState.CANCELLED

    @pytest.mark.parametrize("raw", ["success", "failed"])
    async def test_finished_run_is_left_alone(
        self, server: AirflowServer, adapter: Orchestrator, raw: str
    ) -> None:
        ref = await submitted(server, adapter)
        server.set_state(ref.external_id, raw)
        await adapter.cancel(ref)
        assert calls(server) == [("GET", f"{RUNS_PATH}/retrigger-run-42")]
        assert server.runs[(DAG_ID, ref.external_id)]["state"] == raw

    async def test_v1_sets_state_then_note(self) -> None:
        server = AirflowServer(api_version="v1", auth=AuthType.NONE)
        async with connected(server) as adapter:
            ref = await submitted(server, adapter)
            await adapter.cancel(ref)
            status = await adapter.get_status(ref)
        run_path = f"/api/v1/dags/{DAG_ID}/dagRuns/retrigger-run-42"
        assert calls(server)[:3] == [
            ("GET", run_path),
            ("PATCH", run_path),
            ("PATCH", f"{run_path}/setNote"),
        ]
        assert json.loads(server.requests[1].content) == {"state": "failed"}
        assert json.loads(server.requests[2].content) == {"note": CANCEL_NOTE}
        assert status.state is RunState.CANCELLED

    async def test_v1_without_set_note_endpoint_still_stops(self) -> None:
        server = AirflowServer(api_version="v1", auth=AuthType.NONE)

        def old_airflow(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/setNote"):
                return httpx.Response(404, json={"detail": "Not Found"})
            return server.handler(request)

        async with connected(server, old_airflow) as old:
            ref = await old.submit(REQUEST)
            await old.cancel(ref)
            status = await old.get_status(ref)
        assert status.state is RunState.FAILED


class TestErrors:
    async def test_unknown_dag_is_rejected(
        self, server: AirflowServer, adapter: Orchestrator
    ) -> None:
        missing = RetrainRequest("k", 1, "p", "no_such_dag", {})
        with pytest.raises(OrchestratorRejected, match="404"):
            await adapter.submit(missing)
        assert server.launched == 0

    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(200, content=b"<html>proxy</html>"),
            httpx.Response(200, json={"state": "queued"}),
            httpx.Response(200, json=["retrigger-run-42"]),
        ],
    )
    async def test_malformed_2xx_is_unavailable(self, answer: httpx.Response) -> None:
        server = AirflowServer(auth=AuthType.NONE)
        async with connected(server, lambda request: answer) as adapter:
            with pytest.raises(OrchestratorUnavailable, match="malformed"):
                await adapter.submit(REQUEST)


class TestJWTAuth:
    async def test_token_is_fetched_once_and_reused(
        self, server: AirflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)
        await adapter.get_status(ref)
        assert server.logins == 1
        assert all(r.headers["authorization"] == "Bearer jwt-1" for r in server.requests[1:])

    async def test_the_token_outlives_the_client(self, server: AirflowServer) -> None:
        # the dispatcher and the poller make a client per call: they must not log in each time
        async with connected(server) as first:
            ref = await first.submit(REQUEST)
        async with connected(server) as second:
            await second.get_status(ref)
        assert server.logins == 1

    async def test_expired_token_is_refreshed_once(
        self, server: AirflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)
        server.expire_tokens()
        status = await adapter.get_status(ref)
        assert status.state is RunState.QUEUED
        assert server.logins == 2
        assert server.requests[-1].headers["authorization"] == "Bearer jwt-2"

    async def test_persistent_401_is_rejected_without_looping(
        self, server: AirflowServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)
        server.accept_tokens = False
        with pytest.raises(OrchestratorRejected, match="401"):
            await adapter.get_status(ref)
        assert server.logins == 2

    async def test_streamed_answers_as_a_real_server_sends_them(
        self, server: AirflowServer
    ) -> None:
        # MockTransport answers arrive already read; a real server's arrive as a stream, and a
        # custom auth flow must read the login answer itself
        def streamed(request: httpx.Request) -> httpx.Response:
            answer = server.handler(request)
            return httpx.Response(
                answer.status_code,
                headers=answer.headers,
                stream=httpx.ByteStream(answer.read()),
            )

        auth = AirflowJWTAuth(f"{BASE_URL}/auth/token", USERNAME, PASSWORD)
        client = httpx.AsyncClient(
            base_url=BASE_URL, auth=auth, transport=httpx.MockTransport(streamed)
        )
        ref = await AirflowOrchestrator(server.connection, client).submit(REQUEST)
        await client.aclose()
        assert ref.external_id == "retrigger-run-42"
        assert server.launched == 1

    async def test_wrong_password_is_rejected(self, server: AirflowServer) -> None:
        wrong = AirflowJWTAuth(f"{BASE_URL}/auth/token", USERNAME, "nope")
        client = httpx.AsyncClient(
            base_url=BASE_URL, auth=wrong, transport=httpx.MockTransport(server.handler)
        )
        adapter = AirflowOrchestrator(server.connection, client)
        with pytest.raises(OrchestratorRejected, match="login refused"):
            await adapter.submit(REQUEST)
        await client.aclose()
        assert server.launched == 0

    @pytest.mark.parametrize(
        ("answer", "error"),
        [
            (httpx.Response(503, headers={"Retry-After": "5"}), OrchestratorUnavailable),
            (httpx.Response(201, json={"token": "x"}), OrchestratorUnavailable),
            (httpx.Response(201, content=b"not json"), OrchestratorUnavailable),
            (httpx.Response(403, json={"detail": "Forbidden"}), OrchestratorRejected),
        ],
    )
    async def test_login_failures_become_our_errors(
        self, server: AirflowServer, answer: httpx.Response, error: type[Exception]
    ) -> None:
        async with connected(server, lambda request: answer) as adapter:
            with pytest.raises(error):
                await adapter.submit(REQUEST)

    async def test_connection_with_airflow_jwt_gets_the_login_flow(
        self, server: AirflowServer
    ) -> None:
        assert isinstance(AirflowOrchestrator.http_auth(server.connection), AirflowJWTAuth)
        assert AuthType.AIRFLOW_JWT in AirflowOrchestrator.auth_types


class TestOptions:
    async def test_defaults_to_v2(self) -> None:
        options = AirflowOrchestrator.parse_options(None)
        assert options.model_dump() == {"api_version": "v2", "unpause": False}

    @pytest.mark.parametrize("options", [{"api_version": "v3"}, {"unpaused": True}])
    async def test_invalid_options_are_refused(self, options: dict[str, object]) -> None:
        with pytest.raises(InvalidConfig):
            AirflowOrchestrator.parse_options(options)
