"""The Dagster adapter against a fake of the Dagster webserver's GraphQL API."""

from __future__ import annotations

import json
from typing import Any

import pytest

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    Orchestrator,
    RetrainRequest,
    RunRef,
    RunState,
)
from retrigger.dispatch.orchestrators.dagster import RUN_KEY_TAG, DagsterOrchestrator
from retrigger.errors import InvalidConfig, OrchestratorRejected, OrchestratorUnavailable
from tests.dispatch.orchestrators import helpers
from tests.dispatch.orchestrators.helpers import CONTEXT
from tests.dispatch.orchestrators.servers import connected
from tests.dispatch.orchestrators.servers.dagster import (
    BASE_URL,
    JOB,
    LOCATION,
    REPOSITORY,
    DagsterServer,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

RUN_CONFIG = {"ops": {"train": {"config": {"epochs": 3}}}}
REQUEST = helpers.retrain(JOB, RUN_CONFIG)


@pytest.fixture
def server() -> DagsterServer:
    return DagsterServer()


async def submitted(server: DagsterServer, adapter: Orchestrator) -> RunRef:
    return await helpers.submitted(server, adapter, REQUEST)


def tags_of(variables: dict[str, Any]) -> dict[str, str]:
    tags = variables["executionParams"]["executionMetadata"]["tags"]
    return {t["key"]: t["value"] for t in tags}


def typed(field: str, typename: str, **fields: Any) -> dict[str, Any]:
    return {"data": {field: {"__typename": typename, **fields}}}


class TestSubmit:
    async def test_looks_up_the_key_then_launches(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(REQUEST)

        assert all(
            (r.method, r.url.path) == ("POST", "/graphql") and "authorization" not in r.headers
            for r in server.requests
        )
        (find, find_vars), (launch, launch_vars) = server.operations()
        assert (find, launch) == ("runsOrError", "launchRun")
        assert find_vars == {
            "filter": {"tags": [{"key": RUN_KEY_TAG, "value": "retrigger-run-42"}]}
        }
        params = launch_vars["executionParams"]
        assert params["selector"] == {
            "repositoryLocationName": LOCATION,
            "repositoryName": REPOSITORY,
            "jobName": JOB,
        }
        assert params["runConfigData"] == RUN_CONFIG
        tags = tags_of(launch_vars)
        assert tags[RUN_KEY_TAG] == "retrigger-run-42"
        assert tags["retrigger/product"] == "fraud-scorer"
        assert json.loads(tags["retrigger/context"]) == CONTEXT
        (run_id,) = server.runs
        assert ref == RunRef(external_id=run_id, url=f"{BASE_URL}/runs/{run_id}", data={"job": JOB})

    async def test_existing_run_with_the_key_is_returned(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        first = await submitted(server, adapter)
        again = await adapter.submit(REQUEST)
        assert [field for field, _ in server.operations()] == ["runsOrError"]
        assert again == first
        assert server.launched == 1

    async def test_parameters_as_tags(self) -> None:
        server = DagsterServer(parameters_as="tags")
        request = RetrainRequest(
            "retrigger-run-1", 1, "fraud-scorer", JOB, {"epochs": 3, "dataset": "s3://d/x"}
        )
        async with connected(server) as adapter:
            await adapter.submit(request)
        _, (_, launch_vars) = server.operations()
        assert launch_vars["executionParams"]["runConfigData"] == {}
        tags = tags_of(launch_vars)
        assert tags["retrigger/param/epochs"] == "3"
        assert tags["retrigger/param/dataset"] == "s3://d/x"

    @pytest.mark.parametrize(
        ("result", "error"),
        [
            (
                {"__typename": "PipelineNotFoundError", "message": "Could not find Pipeline x"},
                OrchestratorRejected,
            ),
            ({"__typename": "InvalidSubsetError", "message": "bad subset"}, OrchestratorRejected),
            ({"__typename": "UnauthorizedError", "message": "no launch"}, OrchestratorRejected),
            ({"__typename": "InvalidStepError", "invalidStepKey": "s"}, OrchestratorRejected),
            ({"__typename": "PythonError", "message": "boom"}, OrchestratorUnavailable),
        ],
    )
    async def test_typed_launch_errors(
        self,
        server: DagsterServer,
        adapter: Orchestrator,
        result: dict[str, Any],
        error: type[Exception],
    ) -> None:
        server.answer_next({"data": {"runsOrError": {"__typename": "Runs", "results": []}}})
        server.answer_next({"data": {"launchRun": result}})
        with pytest.raises(error, match=result["__typename"]):
            await adapter.submit(REQUEST)

    async def test_unknown_job_is_rejected(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        request = RetrainRequest("k", 1, "p", "no_such_job", RUN_CONFIG)
        with pytest.raises(OrchestratorRejected, match="PipelineNotFoundError"):
            await adapter.submit(request)
        assert server.launched == 0

    async def test_invalid_run_config_is_rejected_with_its_messages(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        request = RetrainRequest("k", 1, "p", JOB, {"epochs": 3})
        with pytest.raises(OrchestratorRejected, match='unexpected config entry "epochs"'):
            await adapter.submit(request)

    async def test_bad_runs_filter_is_rejected(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        server.answer_next(
            typed("runsOrError", "InvalidPipelineRunsFilterError", message="bad filter")
        )
        with pytest.raises(OrchestratorRejected, match="bad filter"):
            await adapter.submit(REQUEST)


class TestStatus:
    @pytest.mark.parametrize(
        ("raw", "state"),
        [
            ("QUEUED", RunState.QUEUED),
            ("NOT_STARTED", RunState.QUEUED),
            ("STARTING", RunState.QUEUED),
            ("STARTED", RunState.RUNNING),
            ("CANCELING", RunState.RUNNING),
            ("MANAGED", RunState.RUNNING),
            ("SUCCESS", RunState.SUCCEEDED),
            ("FAILURE", RunState.FAILED),
            ("CANCELED", RunState.CANCELLED),
        ],
    )
    async def test_maps_dagster_statuses(
        self, server: DagsterServer, adapter: Orchestrator, raw: str, state: RunState
    ) -> None:
        ref = await submitted(server, adapter)
        server.runs[ref.external_id]["status"] = raw
        status = await adapter.get_status(ref)
        assert status.state is state
        assert server.operations() == [("runOrError", {"runId": ref.external_id})]

    async def test_unknown_status_is_running_with_the_raw_status(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        ref = await submitted(server, adapter)
        server.runs[ref.external_id]["status"] = "HIBERNATING"
        status = await adapter.get_status(ref)
        assert status.state is RunState.RUNNING
        assert "'HIBERNATING'" in status.detail

    async def test_missing_run_is_rejected(self, adapter: Orchestrator) -> None:
        with pytest.raises(OrchestratorRejected, match="RunNotFoundError"):
            await adapter.get_status(RunRef(external_id="6b7e9a1c-0000-0000-0000-000000000000"))

    async def test_python_error_is_unavailable(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        ref = await submitted(server, adapter)
        server.answer_next(typed("runOrError", "PythonError", message="db locked"))
        with pytest.raises(OrchestratorUnavailable, match="db locked"):
            await adapter.get_status(ref)


class TestCancel:
    async def test_terminates_the_run(self, server: DagsterServer, adapter: Orchestrator) -> None:
        ref = await submitted(server, adapter)
        await adapter.cancel(ref)
        assert server.operations() == [("terminateRun", {"runId": ref.external_id})]
        assert (await adapter.get_status(ref)).state is RunState.CANCELLED

    async def test_finished_run_is_no_error(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        ref = await submitted(server, adapter)
        server.finish(ref.external_id, RunState.SUCCEEDED)
        await adapter.cancel(ref)
        assert [field for field, _ in server.operations()] == ["terminateRun", "runOrError"]
        assert server.runs[ref.external_id]["status"] == "SUCCESS"

    async def test_refused_termination_of_a_live_run_is_rejected(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        ref = await submitted(server, adapter)
        server.runs[ref.external_id]["status"] = "STARTED"
        server.answer_next(typed("terminateRun", "TerminateRunFailure", message="no launcher"))
        with pytest.raises(OrchestratorRejected, match="no launcher"):
            await adapter.cancel(ref)

    @pytest.mark.parametrize("raw", ["STARTING", "NOT_STARTED"])
    async def test_run_not_yet_terminable_is_unavailable(
        self, server: DagsterServer, adapter: Orchestrator, raw: str
    ) -> None:
        # a real Dagster terminates only QUEUED and STARTED runs, and says so with HTTP 200
        ref = await submitted(server, adapter)
        server.runs[ref.external_id]["status"] = raw
        message = f"Run {ref.external_id} could not be terminated due to having status {raw}."
        server.answer_next(typed("terminateRun", "TerminateRunFailure", message=message))
        with pytest.raises(OrchestratorUnavailable, match=f"run {raw}, not yet terminable"):
            await adapter.cancel(ref)
        assert [field for field, _ in server.operations()] == ["terminateRun", "runOrError"]

    async def test_run_already_canceling_is_no_error(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        ref = await submitted(server, adapter)
        server.runs[ref.external_id]["status"] = "CANCELING"
        message = f"Run {ref.external_id} could not be terminated due to having status CANCELING."
        server.answer_next(typed("terminateRun", "TerminateRunFailure", message=message))
        await adapter.cancel(ref)
        assert [field for field, _ in server.operations()] == ["terminateRun", "runOrError"]

    async def test_missing_run_is_rejected(self, adapter: Orchestrator) -> None:
        with pytest.raises(OrchestratorRejected, match="RunNotFoundError"):
            await adapter.cancel(RunRef(external_id="6b7e9a1c-0000-0000-0000-000000000000"))


class TestErrors:
    async def test_top_level_graphql_errors_are_unavailable(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        error = {"message": 'Unknown type "RunsFilter".', "locations": [{"line": 2}]}
        server.answer_next({"data": None, "errors": [error]})
        with pytest.raises(OrchestratorUnavailable, match='Unknown type "RunsFilter"'):
            await adapter.submit(REQUEST)

    @pytest.mark.parametrize(
        "payload",
        [
            "<html>gateway</html>",
            {"data": None},
            {"data": {"runsOrError": {"results": []}}},
            {"data": {"runsOrError": {"__typename": "Runs", "results": None}}},
            {"data": {"runsOrError": {"__typename": "Runs", "results": [{"status": "QUEUED"}]}}},
            [],
        ],
    )
    async def test_malformed_2xx_is_unavailable(
        self, server: DagsterServer, adapter: Orchestrator, payload: Any
    ) -> None:
        server.answer_next(payload)
        with pytest.raises(OrchestratorUnavailable, match="malformed"):
            await adapter.submit(REQUEST)
        assert server.launched == 0

    async def test_launch_success_without_run_id_is_unavailable(
        self, server: DagsterServer, adapter: Orchestrator
    ) -> None:
        server.answer_next({"data": {"runsOrError": {"__typename": "Runs", "results": []}}})
        server.answer_next(typed("launchRun", "LaunchRunSuccess", run={"status": "QUEUED"}))
        with pytest.raises(OrchestratorUnavailable, match="runId"):
            await adapter.submit(REQUEST)


class TestAuth:
    async def test_bearer_token(self) -> None:
        server = DagsterServer(auth=AuthType.BEARER, secret="tok")
        async with connected(server) as adapter:
            await adapter.submit(REQUEST)
        assert {r.headers["authorization"] for r in server.requests} == {"Bearer tok"}

    async def test_token_in_a_custom_header_for_dagster_plus(self) -> None:
        server = DagsterServer(
            auth=AuthType.BEARER, secret="user:tok", api_token_header="Dagster-Cloud-Api-Token"
        )
        async with connected(server) as adapter:
            await adapter.submit(REQUEST)
        assert all(r.headers["dagster-cloud-api-token"] == "user:tok" for r in server.requests)
        assert all("authorization" not in r.headers for r in server.requests)


class TestOptions:
    async def test_defaults(self) -> None:
        options = DagsterOrchestrator.parse_options({"repository_location_name": "ml"})
        assert options.model_dump() == {
            "repository_location_name": "ml",
            "repository_name": "__repository__",
            "parameters_as": "run_config",
            "api_token_header": None,
        }

    @pytest.mark.parametrize(
        "options",
        [
            {},
            {"repository_location_name": "ml", "parameters_as": "env"},
            {"repository_location_name": "ml", "job": "x"},
        ],
    )
    async def test_invalid_options_are_refused(self, options: dict[str, object]) -> None:
        with pytest.raises(InvalidConfig):
            DagsterOrchestrator.parse_options(options)
