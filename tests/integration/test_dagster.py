"""Against a real Dagster (webserver, daemon, run queue): the adapter launches job runs tagged with
the idempotency key, finds them again instead of launching twice, follows and terminates them, and
turns Dagster's typed errors (answered with HTTP 200) into refusals.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from retrigger.dispatch.orchestrators import dagster as dagster_adapter
from retrigger.dispatch.orchestrators.base import (
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
)
from retrigger.dispatch.orchestrators.dagster import RUN_KEY_TAG, DagsterOrchestrator
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable
from tests.integration import helpers
from tests.integration.dagster import JOB, LOCATION, OP, DagsterPeer
from tests.integration.helpers import FINISHED, connected

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

RUN_TIMEOUT = 60.0
"""Seconds a run of a few seconds may take on a loaded 2-core machine."""

_LAUNCH = """
mutation ItLaunch($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on PipelineNotFoundError { message }
  }
}"""


def retrain_request(job: str = JOB, **op_config: Any) -> RetrainRequest:
    """A request whose parameters are the job's run config: ``op_config`` on top of the required."""
    return helpers.retrain_request(job, wrap=lambda c: {"ops": {OP: {"config": c}}}, **op_config)


async def wait_state(
    orchestrator: DagsterOrchestrator, ref: RunRef, *, until: frozenset[RunState] = FINISHED
) -> tuple[RemoteStatus, list[RunState]]:
    """Dagster runs are short: a tighter poll and bound than the shared default."""
    return await helpers.wait_state(
        orchestrator, ref, until=until, timeout=RUN_TIMEOUT, interval=0.25
    )


async def wait_raw_status(dagster: DagsterPeer, ref: RunRef, statuses: set[str]) -> str:
    """Poll the run's Dagster status closely (a run is STARTING for about a second)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + RUN_TIMEOUT
    while (status := (await dagster.run(ref.external_id))["status"]) not in statuses:
        assert loop.time() < deadline, f"run still {status} after {RUN_TIMEOUT:.0f} s"
        await asyncio.sleep(0.02)
    return str(status)


class TestDagsterAdapter:
    async def test_submit_launches_the_job_tagged_with_the_key(self, dagster: DagsterPeer) -> None:
        request = retrain_request()
        async with connected(DagsterOrchestrator, dagster.connection()) as orchestrator:
            ref = await orchestrator.submit(request)
            created = await dagster.run(ref.external_id)
            status, seen = await wait_state(orchestrator, ref)
        assert ref.url == f"{dagster.base_url}/runs/{ref.external_id}"
        assert ref.data == {"job": JOB}
        assert created["jobName"] == JOB
        assert created["runConfig"] == request.parameters
        tags = created["tags"]
        assert tags[RUN_KEY_TAG] == request.idempotency_key
        assert tags["retrigger/product"] == "churn"
        assert json.loads(tags["retrigger/context"]).items() >= request.context.items()
        assert tags["dagster/code_location"] == LOCATION
        assert status.state is RunState.SUCCEEDED, (status, seen)
        assert set(seen) <= {RunState.QUEUED, RunState.RUNNING, RunState.SUCCEEDED}
        assert (await dagster.run(ref.external_id))["status"] == "SUCCESS"
        # the op itself received the run config (with its defaults filled in)
        config = {**request.parameters["ops"][OP]["config"], "fail": False, "sleep_seconds": 0.0}
        expected = f"retrigger config {json.dumps(config, sort_keys=True)}"
        assert expected in await dagster.messages(ref.external_id)

    async def test_resubmission_returns_the_same_run(self, dagster: DagsterPeer) -> None:
        request = retrain_request()
        async with connected(DagsterOrchestrator, dagster.connection()) as orchestrator:
            racing = await asyncio.gather(
                orchestrator.submit(request), orchestrator.submit(request)
            )
            retried = await orchestrator.submit(request)
            status, _ = await wait_state(orchestrator, retried)
        assert {ref.external_id for ref in racing} == {retried.external_id}
        runs = await dagster.runs_with_key(request.idempotency_key)
        assert [r["runId"] for r in runs] == [retried.external_id]
        assert status.state is RunState.SUCCEEDED

    async def test_a_failing_op_fails_the_run(self, dagster: DagsterPeer) -> None:
        request = retrain_request(fail=True)
        async with connected(DagsterOrchestrator, dagster.connection()) as orchestrator:
            ref = await orchestrator.submit(request)
            status, _ = await wait_state(orchestrator, ref)
        assert status.state is RunState.FAILED, status
        assert (await dagster.run(ref.external_id))["status"] == "FAILURE"

    async def test_unknown_job_is_a_typed_error_answered_with_200(
        self, dagster: DagsterPeer
    ) -> None:
        request = retrain_request(job="no_such_job")
        selector = {
            "repositoryLocationName": LOCATION,
            "repositoryName": "__repository__",
            "jobName": request.pipeline,
        }
        params = {"selector": selector, "runConfigData": dict(request.parameters)}
        raw = await dagster.graphql(_LAUNCH, {"executionParams": params})
        assert raw.status_code == 200, raw.text
        assert raw.json()["data"]["launchRun"]["__typename"] == "PipelineNotFoundError"
        async with connected(DagsterOrchestrator, dagster.connection()) as orchestrator:
            with pytest.raises(OrchestratorRejected, match="PipelineNotFoundError.*no_such_job"):
                await orchestrator.submit(request)
        assert await dagster.runs_with_key(request.idempotency_key) == []

    async def test_invalid_run_config_is_rejected(self, dagster: DagsterPeer) -> None:
        request = retrain_request(epochs=3)
        async with connected(DagsterOrchestrator, dagster.connection()) as orchestrator:
            with pytest.raises(OrchestratorRejected, match='unexpected config entry "epochs"'):
                await orchestrator.submit(request)
        assert await dagster.runs_with_key(request.idempotency_key) == []

    async def test_status_of_an_unknown_run_is_rejected(self, dagster: DagsterPeer) -> None:
        async with connected(DagsterOrchestrator, dagster.connection()) as orchestrator:
            with pytest.raises(OrchestratorRejected, match="RunNotFoundError"):
                await orchestrator.get_status(RunRef(external_id=str(uuid.uuid4())))

    async def test_a_query_the_schema_refuses_is_answered_400_and_rejected(
        self, dagster: DagsterPeer, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # as after a Dagster upgrade that renamed a field: the webserver answers 400 with
        # top-level errors (never 200), which the adapter reports as a refusal
        renamed = dagster_adapter._FIND_RUN.replace("runId status", "runId statusName")
        monkeypatch.setattr(dagster_adapter, "_FIND_RUN", renamed)
        request = retrain_request()
        async with connected(DagsterOrchestrator, dagster.connection()) as orchestrator:
            with pytest.raises(OrchestratorRejected, match="answered 400.*statusName"):
                await orchestrator.submit(request)
        assert await dagster.runs_with_key(request.idempotency_key) == []

    async def test_cancel_terminates_a_running_run(self, dagster: DagsterPeer) -> None:
        request = retrain_request(sleep_seconds=300.0)
        async with connected(DagsterOrchestrator, dagster.connection()) as orchestrator:
            ref = await orchestrator.submit(request)
            await wait_state(orchestrator, ref, until=frozenset({RunState.RUNNING}))
            await orchestrator.cancel(ref)
            await orchestrator.cancel(ref)  # again while it stops (CANCELING): not an error
            status, _ = await wait_state(orchestrator, ref)
            await orchestrator.cancel(ref)  # a finished run: not an error
        assert status.state is RunState.CANCELLED, status
        assert (await dagster.run(ref.external_id))["status"] == "CANCELED"

    async def test_cancel_of_a_starting_run_is_retryable(self, dagster: DagsterPeer) -> None:
        request = retrain_request(sleep_seconds=300.0)
        refusals: list[str] = []
        async with connected(DagsterOrchestrator, dagster.connection()) as orchestrator:
            ref = await orchestrator.submit(request)
            # Dagster refuses to terminate a STARTING run (its run worker is being launched)
            await wait_raw_status(dagster, ref, {"STARTING", "STARTED"})
            loop = asyncio.get_running_loop()
            deadline = loop.time() + RUN_TIMEOUT
            while True:
                try:
                    await orchestrator.cancel(ref)
                    break
                except OrchestratorUnavailable as exc:  # as the poller does: sent again later
                    refusals.append(str(exc))
                assert loop.time() < deadline, refusals[-3:]
                await asyncio.sleep(0.25)
            status, _ = await wait_state(orchestrator, ref)
        assert status.state is RunState.CANCELLED, status
        assert all("run STARTING, not yet terminable" in text for text in refusals), refusals
