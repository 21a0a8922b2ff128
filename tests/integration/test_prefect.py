"""Against a real Prefect 3 server and a served flow: the adapter creates flow runs with the
idempotency key, follows them to their end, and cancels them.
"""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from retrigger.dispatch.orchestrators.base import (
    RetrainRequest,
    RunRef,
    RunState,
)
from retrigger.dispatch.orchestrators.prefect import PrefectOrchestrator
from retrigger.errors import OrchestratorUnavailable
from tests.integration.helpers import connected, retrain_request, wait_state
from tests.integration.prefect import DEPLOYMENT, PrefectPeer

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]


async def submit(orchestrator: PrefectOrchestrator, request: RetrainRequest) -> RunRef:
    """Submit as the dispatcher does: a retryable answer (Prefect's 503 when SQLite is busy)
    is retried, a few times."""
    for _ in range(4):
        with contextlib.suppress(OrchestratorUnavailable):
            return await orchestrator.submit(request)
        await asyncio.sleep(1)
    return await orchestrator.submit(request)


class TestPrefectAdapter:
    async def test_submit_runs_the_deployment_with_key_and_parameters(
        self, prefect: PrefectPeer
    ) -> None:
        request = retrain_request(DEPLOYMENT)
        async with connected(PrefectOrchestrator, prefect.connection()) as orchestrator:
            ref = await submit(orchestrator, request)
            status, seen = await wait_state(orchestrator, ref)
        run = await prefect.flow_run(ref.external_id)
        assert run["idempotency_key"] == request.idempotency_key
        assert run["deployment_id"] == prefect.deployment_id
        parameters = run["parameters"]
        assert {k: parameters[k] for k in request.parameters} == request.parameters
        assert parameters["retrigger"].items() >= request.context.items()
        assert {"retrigger", "product:churn"} <= set(run["tags"])
        assert ref.url == f"{prefect.api_url.removesuffix('/api')}/runs/flow-run/{run['id']}"
        assert status.state is RunState.SUCCEEDED, (status, seen)
        assert set(seen) <= {RunState.QUEUED, RunState.RUNNING, RunState.SUCCEEDED}
        assert run["state_type"] == "COMPLETED"

    async def test_retry_returns_the_same_flow_run(self, prefect: PrefectPeer) -> None:
        request = retrain_request(DEPLOYMENT)
        before = len(await prefect.flow_runs())
        async with connected(PrefectOrchestrator, prefect.connection()) as orchestrator:
            racing = await asyncio.gather(
                submit(orchestrator, request), submit(orchestrator, request)
            )
            retried = await submit(orchestrator, request)
            status, _ = await wait_state(orchestrator, retried)
        assert len({ref.external_id for ref in (*racing, retried)}) == 1
        runs = await prefect.flow_runs()
        assert len(runs) == before + 1
        mine = [r for r in runs if r["idempotency_key"] == request.idempotency_key]
        assert [r["id"] for r in mine] == [retried.external_id]
        assert status.state is RunState.SUCCEEDED

    async def test_a_failing_flow_fails_the_run(self, prefect: PrefectPeer) -> None:
        request = retrain_request(DEPLOYMENT, fail=True)
        async with connected(PrefectOrchestrator, prefect.connection()) as orchestrator:
            ref = await submit(orchestrator, request)
            status, _ = await wait_state(orchestrator, ref)
        assert status.state is RunState.FAILED, status
        assert (await prefect.flow_run(ref.external_id))["state_type"] == "FAILED"

    async def test_cancel_stops_a_running_flow(self, prefect: PrefectPeer) -> None:
        request = retrain_request(DEPLOYMENT, sleep_seconds=300)
        async with connected(PrefectOrchestrator, prefect.connection()) as orchestrator:
            ref = await submit(orchestrator, request)
            await wait_state(orchestrator, ref, until=frozenset({RunState.RUNNING}))
            await orchestrator.cancel(ref)
            status, _ = await wait_state(orchestrator, ref)
            await orchestrator.cancel(ref)  # a finished run: not an error
        assert status.state is RunState.CANCELLED, status
        assert (await prefect.flow_run(ref.external_id))["state_type"] == "CANCELLED"
