"""Argo Workflows adapter against a fake of the Argo Server's documented REST API."""

from __future__ import annotations

import json
from dataclasses import replace

import httpx
import pytest

from retrigger.dispatch.orchestrators.argo import ArgoOptions, label_value, workflow_name
from retrigger.dispatch.orchestrators.base import Orchestrator, RetrainRequest, RunRef, RunState
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable
from tests.dispatch.orchestrators import helpers
from tests.dispatch.orchestrators.servers import connected
from tests.dispatch.orchestrators.servers.argo import TOKEN, ArgoServer

pytestmark = pytest.mark.asyncio(loop_scope="session")

SUBMIT = "/api/v1/workflows/ml/submit"
CONTEXT = {**helpers.CONTEXT, **helpers.WINDOW}


def retrain(run_id: int = 42) -> RetrainRequest:
    parameters = {"epochs": 3, "model": "xgb", "grid": {"depth": [4, 6]}}
    return helpers.retrain("train-fraud-scorer", parameters, run_id=run_id, context=CONTEXT)


@pytest.fixture
def server() -> ArgoServer:
    return ArgoServer()


class TestSubmit:
    async def test_submits_the_template_under_the_key(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())

        (submit,) = server.requests
        assert (submit.method, submit.url.path) == ("POST", SUBMIT)
        assert submit.headers["authorization"] == f"Bearer {TOKEN}"
        body = json.loads(submit.content)
        parameters = body["submitOptions"].pop("parameters")
        assert body == {
            "namespace": "ml",
            "resourceKind": "WorkflowTemplate",
            "resourceName": "train-fraud-scorer",
            "submitOptions": {
                "name": "retrigger-run-42",
                "labels": "retrigger/run-id=42,retrigger/product=fraud-scorer",
            },
        }
        assert parameters[:3] == ["epochs=3", "model=xgb", 'grid={"depth": [4, 6]}']
        name, _, value = parameters[3].partition("=")
        assert (name, json.loads(value)) == ("retrigger", CONTEXT)
        assert len(parameters) == 4
        assert ref == RunRef(
            "retrigger-run-42",
            "https://argo.test:2746/workflows/ml/retrigger-run-42",
            {"namespace": "ml"},
        )

    async def test_context_parameter_can_be_left_out(self) -> None:
        server = ArgoServer(ArgoOptions(namespace="ml", context_parameter=None))
        async with connected(server) as adapter:
            await adapter.submit(retrain())
        parameters = json.loads(server.requests[0].content)["submitOptions"]["parameters"]
        assert [p.partition("=")[0] for p in parameters] == ["epochs", "model", "grid"]

    async def test_conflict_returns_the_existing_workflow(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        first = await adapter.submit(retrain())
        server.requests.clear()
        again = await adapter.submit(retrain())
        assert again == first
        assert [(r.method, r.url.path) for r in server.requests] == [
            ("POST", SUBMIT),
            ("GET", "/api/v1/workflows/ml/retrigger-run-42"),
        ]
        assert server.launched == 1

    async def test_conflict_with_another_runs_workflow_is_rejected(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        await adapter.submit(retrain(run_id=41))
        with pytest.raises(OrchestratorRejected, match="belongs to run 41"):
            await adapter.submit(retrain(run_id=42))

    async def test_unknown_template_is_rejected(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        with pytest.raises(OrchestratorRejected, match="404"):
            await adapter.submit(replace(retrain(), pipeline="no-such-template"))

    async def test_parameter_name_with_equals_is_rejected(self, adapter: Orchestrator) -> None:
        with pytest.raises(OrchestratorRejected, match="parameter names"):
            await adapter.submit(replace(retrain(), parameters={"a=b": 1}))


class TestNames:
    async def test_key_becomes_a_dns_name(self) -> None:
        assert workflow_name("Retrigger_Run_42") == "retrigger-run-42"

    async def test_label_values_are_sanitised(self) -> None:
        assert label_value("fraud scorer/eu") == "fraud-scorer-eu"
        assert len(label_value("x" * 100)) == 63


class TestStatus:
    @pytest.mark.parametrize(
        ("phase", "state"),
        [
            (None, RunState.QUEUED),
            ("", RunState.QUEUED),
            ("Pending", RunState.QUEUED),
            ("Running", RunState.RUNNING),
            ("Succeeded", RunState.SUCCEEDED),
            ("Failed", RunState.FAILED),
            ("Error", RunState.FAILED),
        ],
    )
    async def test_maps_every_phase(
        self, server: ArgoServer, adapter: Orchestrator, phase: str | None, state: RunState
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_phase(ref.external_id, phase)
        assert (await adapter.get_status(ref)).state is state
        assert server.requests[-1].url.path == "/api/v1/workflows/ml/retrigger-run-42"

    async def test_unknown_phase_is_running_with_the_raw_phase(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_phase(ref.external_id, "Hibernating")
        status = await adapter.get_status(ref)
        assert status.state is RunState.RUNNING
        assert "Hibernating" in status.detail

    async def test_terminated_workflow_is_cancelled(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.finish(ref.external_id, RunState.CANCELLED)
        status = await adapter.get_status(ref)
        assert status.state is RunState.CANCELLED
        assert "Terminate" in status.detail

    async def test_failure_message_and_outputs_are_reported(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.workflows[ref.external_id]["status"] = {
            "phase": "Succeeded",
            "outputs": {"parameters": [{"name": "model_version", "value": "fraud-scorer-12"}]},
        }
        status = await adapter.get_status(ref)
        assert status.outputs == {"model_version": "fraud-scorer-12"}

    async def test_deleted_workflow_is_rejected(self, adapter: Orchestrator) -> None:
        with pytest.raises(OrchestratorRejected, match="404.*not in the workflow archive"):
            await adapter.get_status(RunRef("retrigger-run-1", data={"namespace": "ml"}))

    async def test_workflow_deleted_by_its_ttl_is_read_from_the_archive(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.workflows[ref.external_id]["status"] = {
            "phase": "Succeeded",
            "outputs": {"parameters": [{"name": "model_version", "value": "fraud-scorer-13"}]},
        }
        server.garbage_collect(ref.external_id)
        status = await adapter.get_status(ref)
        assert status.state is RunState.SUCCEEDED
        assert status.outputs == {"model_version": "fraud-scorer-13"}
        listing, detail = server.requests[-2:]
        assert listing.url.path == "/api/v1/archived-workflows"
        assert listing.url.params["listOptions.fieldSelector"] == (
            "metadata.namespace=ml,metadata.name=retrigger-run-42"
        )
        uid = server.archive_uid(ref.external_id)
        assert detail.url.path == f"/api/v1/archived-workflows/{uid}"
        await adapter.cancel(ref)  # an archived workflow has ended: nothing to stop

    async def test_deleted_workflow_without_an_archive_is_rejected(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        server.archive = None
        ref = await adapter.submit(retrain())
        server.finish(ref.external_id, RunState.SUCCEEDED)
        server.garbage_collect(ref.external_id)
        with pytest.raises(OrchestratorRejected, match="not in the workflow archive"):
            await adapter.get_status(ref)


class TestCancel:
    async def test_terminates_a_running_workflow(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.set_phase(ref.external_id, "Running")
        await adapter.cancel(ref)
        terminate = server.requests[-1]
        assert (terminate.method, terminate.url.path) == (
            "PUT",
            "/api/v1/workflows/ml/retrigger-run-42/terminate",
        )
        assert json.loads(terminate.content) == {"namespace": "ml", "name": "retrigger-run-42"}
        assert (await adapter.get_status(ref)).state is RunState.CANCELLED

    async def test_completed_workflow_is_left_alone(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())
        server.finish(ref.external_id, RunState.SUCCEEDED)
        await adapter.cancel(ref)
        assert server.requests[-1].method == "GET"

    async def test_workflow_ending_during_cancel_is_no_error(
        self, server: ArgoServer, adapter: Orchestrator
    ) -> None:
        ref = await adapter.submit(retrain())

        def finish_first(request: httpx.Request) -> httpx.Response:
            if request.url.path.endswith("/terminate"):
                server.finish(ref.external_id, RunState.SUCCEEDED)
            return server.handler(request)  # Argo answers 500 for a completed workflow

        async with connected(server, finish_first) as racing:
            await racing.cancel(ref)
            assert (await racing.get_status(ref)).state is RunState.SUCCEEDED


class TestErrors:
    @pytest.mark.parametrize(
        "answer",
        [
            httpx.Response(200, text="<html>argo ui</html>"),
            httpx.Response(200, json={"metadata": {}}),
            httpx.Response(200, json=[]),
        ],
    )
    async def test_malformed_2xx_is_unavailable(
        self, server: ArgoServer, answer: httpx.Response
    ) -> None:
        async with connected(server, lambda request: answer) as adapter:
            with pytest.raises(OrchestratorUnavailable, match="malformed"):
                await adapter.submit(retrain())
