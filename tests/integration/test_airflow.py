"""Against a real Apache Airflow 3: the adapter triggers, follows and stops DAG runs, idempotently,
and ``retrigger serve``, fed drifted signals and nothing else, decides, launches one DAG run and
follows it to the end.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import numpy as np
import pytest

from retrigger.dispatch.orchestrators.airflow import CANCEL_NOTE, AirflowOrchestrator
from retrigger.dispatch.orchestrators.base import (
    RetrainRequest,
    RunState,
)
from tests.integration.airflow import DAG_ID, AirflowPeer
from tests.integration.conftest import AIRFLOW_PASSWORD_ENV, Retrigger
from tests.integration.helpers import connected, retrain_request, wait_state

pytestmark = [pytest.mark.integration, pytest.mark.asyncio(loop_scope="session")]

RUN_TIMEOUT = 120.0
"""Seconds a DAG run of a few seconds may take on a loaded 2-core machine."""
DECISION_TIMEOUT = 60.0
"""Seconds from the last signals to the run of the fired decision: a 1 s debounce, a drift
evaluation and one commit, with a wide margin for a loaded 2-core machine."""


class TestAirflowAdapter:
    async def test_submit_runs_the_dag_with_the_key_and_conf(self, airflow: AirflowPeer) -> None:
        request = retrain_request(DAG_ID)
        async with connected(AirflowOrchestrator, airflow.connection()) as orchestrator:
            ref = await orchestrator.submit(request)
            assert ref.external_id == request.idempotency_key
            assert ref.url == f"{airflow.base_url}/dags/{DAG_ID}/runs/{ref.external_id}"
            created = await airflow.dag_run(request.idempotency_key)
            status, seen = await wait_state(orchestrator, ref)
        conf = created["conf"]
        assert {k: conf[k] for k in request.parameters} == request.parameters
        assert conf["retrigger"].items() >= request.context.items()
        assert created["run_type"] == "manual"
        assert status.state is RunState.SUCCEEDED, (status, seen)
        assert set(seen) <= {RunState.QUEUED, RunState.RUNNING, RunState.SUCCEEDED}
        assert (await airflow.dag_run(request.idempotency_key))["state"] == "success"
        # the task itself received the conf: it returns it as its XCom
        assert await airflow.xcom(request.idempotency_key) == conf

    async def test_resubmission_returns_the_same_dag_run(self, airflow: AirflowPeer) -> None:
        request = retrain_request(DAG_ID)
        before = len(await airflow.dag_runs())
        async with connected(AirflowOrchestrator, airflow.connection()) as orchestrator:
            racing = await asyncio.gather(
                orchestrator.submit(request), orchestrator.submit(request)
            )
            retried = await orchestrator.submit(request)
            status, _ = await wait_state(orchestrator, retried)
        assert {ref.external_id for ref in (*racing, retried)} == {request.idempotency_key}
        runs = await airflow.dag_runs()
        assert len(runs) == before + 1
        assert [r["dag_run_id"] for r in runs].count(request.idempotency_key) == 1
        assert status.state is RunState.SUCCEEDED

    async def test_a_failing_task_fails_the_run(self, airflow: AirflowPeer) -> None:
        request = retrain_request(DAG_ID, fail=True)
        async with connected(AirflowOrchestrator, airflow.connection()) as orchestrator:
            status, _ = await wait_state(orchestrator, await orchestrator.submit(request))
        assert status.state is RunState.FAILED
        assert (await airflow.dag_run(request.idempotency_key))["state"] == "failed"

    async def test_cancel_stops_a_running_dag_run(self, airflow: AirflowPeer) -> None:
        request = retrain_request(DAG_ID, sleep_seconds=300)
        async with connected(AirflowOrchestrator, airflow.connection()) as orchestrator:
            ref = await orchestrator.submit(request)
            await wait_state(orchestrator, ref, until=frozenset({RunState.RUNNING}))
            await orchestrator.cancel(ref)
            status = await orchestrator.get_status(ref)
            await orchestrator.cancel(ref)  # a finished run: not an error
        assert status.state is RunState.CANCELLED, status
        run = await airflow.dag_run(request.idempotency_key)
        assert (run["state"], run["note"]) == ("failed", CANCEL_NOTE)


FEATURES = [{"name": "x", "kind": "numeric"}, {"name": "y", "kind": "numeric"}]
DRIFT_RULE = {"id": "drift", "type": "data_drift", "window": "1d", "drift_share": 0.5}


def created(response: httpx.Response) -> dict[str, Any]:
    """The JSON body of a successful answer."""
    assert response.status_code in (200, 201), f"{response.request.url}: {response.text}"
    body: dict[str, Any] = response.json()
    return body


async def drifting_product(api: httpx.AsyncClient, airflow: AirflowPeer) -> None:
    """Team, product, Airflow connection, a drift policy targeting the DAG, and drifted samples."""
    created(await api.post("/v1/teams", json={"name": "ml"}))
    created(
        await api.post("/v1/products", json={"name": "churn", "team": "ml", "features": FEATURES})
    )
    connection = {
        "name": "airflow-it",
        "kind": "airflow",
        "base_url": airflow.base_url,
        "auth": {
            "type": "airflow_jwt",
            "username": airflow.username,
            "secret_ref": f"env:{AIRFLOW_PASSWORD_ENV}",
        },
        "verify_tls": True,
        "timeout_seconds": 10,
        "options": {},
    }
    created(await api.post("/v1/connections", json=connection))
    target = {
        "connection": "airflow-it",
        "pipeline": DAG_ID,
        "parameters": {"product": "{product}", "run": "{run_id}"},
    }
    spec = {"rules": [DRIFT_RULE], "target": target}
    policy = {"spec": spec, "change_reason": "integration test"}
    created(await api.put("/v1/products/churn/policy", json=policy))
    rng = np.random.default_rng(7)
    reference = {"x": rng.normal(0, 1, 2000).tolist(), "y": rng.normal(5, 2, 2000).tolist()}
    created(await api.post("/v1/products/churn/references", json={"columns": reference}))
    drifted = {"x": rng.normal(1, 1, 1000).tolist(), "y": rng.normal(7, 2, 1000).tolist()}
    created(await api.post("/v1/products/churn/signals/samples", json={"columns": drifted}))


class TestThroughRetrigger:
    async def test_drifting_signals_run_the_dag_once_and_follow_it(
        self, airflow: AirflowPeer, retrigger: Retrigger
    ) -> None:
        """The automatic path, end to end: drifted samples arrive, the debounced evaluation fires
        (trigger ``ingest``), its run leaves the outbox for Airflow, and the poller follows the DAG
        run to success. Nobody calls ``:evaluate`` or ``:retrain``."""
        async with retrigger.client() as api:
            await drifting_product(api, airflow)
            run_id = await self._wait_first_run(api, "churn")
            run = await self._wait_run(api, run_id, {"succeeded", "failed", "cancelled"})
            decision = created(await api.get(f"/v1/decisions/{run['decision_id']}"))
            fired = created(
                await api.get("/v1/decisions", params={"product": "churn", "outcome": "fired"})
            )
            runs = created(await api.get("/v1/runs", params={"product": "churn"}))
        assert run["state"] == "succeeded", run
        assert (decision["trigger"], decision["outcome"]) == ("ingest", "fired"), decision
        assert decision["run_id"] == run_id
        assert [d["id"] for d in fired["items"]] == [decision["id"]], fired
        assert [r["id"] for r in runs["items"]] == [run_id], runs
        # the key is the run's own (its format is the server's business): it is the DAG run's id
        key = run["idempotency_key"]
        assert key
        assert run["external_id"] == key
        assert run["external_url"] == f"{airflow.base_url}/dags/{DAG_ID}/runs/{key}"
        walked = [t["to"] for t in run["transitions"]]
        assert "submitted" in walked, walked
        assert walked[-1] == "succeeded", walked
        parameters = {"product": "churn", "run": str(run_id)}
        assert run["parameters"] == parameters
        dag_run = await airflow.dag_run(key)
        assert dag_run["dag_run_id"] == key
        assert dag_run["state"] == "success"
        assert {k: dag_run["conf"][k] for k in parameters} == parameters
        context = dag_run["conf"]["retrigger"]
        assert (context["product"], context["decision_id"]) == ("churn", decision["id"]), context
        # a forced re-submission (a dispatcher retrying after a lost answer) starts nothing new
        before = len(await airflow.dag_runs())
        request = RetrainRequest(
            idempotency_key=key,
            run_id=run_id,
            product="churn",
            pipeline=DAG_ID,
            parameters=parameters,
        )
        async with connected(AirflowOrchestrator, airflow.connection()) as orchestrator:
            assert (await orchestrator.submit(request)).external_id == key
        assert len(await airflow.dag_runs()) == before

    @staticmethod
    async def _wait_first_run(api: httpx.AsyncClient, product: str) -> int:
        """The id of the product's first run, once the server's own evaluation has created it."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + DECISION_TIMEOUT
        while True:
            listed = created(await api.get("/v1/runs", params={"product": product}))
            if listed["items"]:
                run_id: int = listed["items"][-1]["id"]
                return run_id
            if loop.time() >= deadline:
                decisions = created(await api.get("/v1/decisions", params={"product": product}))
                pytest.fail(f"no run {DECISION_TIMEOUT:.0f} s after the signals: {decisions}")
            await asyncio.sleep(0.5)

    @staticmethod
    async def _wait_run(api: httpx.AsyncClient, run_id: int, states: set[str]) -> dict[str, Any]:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + RUN_TIMEOUT
        while True:
            run = created(await api.get(f"/v1/runs/{run_id}"))
            if run["state"] in states:
                return run
            assert loop.time() < deadline, f"run still {run['state']}: {run}"
            await asyncio.sleep(0.5)
