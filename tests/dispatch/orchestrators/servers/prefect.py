"""A fake Prefect 3 REST API: deployments, flow runs with idempotency keys, state changes."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx

from retrigger.dispatch.orchestrators.base import AuthType, RunState
from retrigger.dispatch.orchestrators.prefect import PrefectOptions
from tests.dispatch.orchestrators.servers import RecordingServer

BASE_URL = "http://prefect.test:4200/api"
API_KEY = "pnu_test_key"
FLOW, DEPLOYMENT = "train-fraud-scorer", "nightly"
DEPLOYMENT_ID = "5f0c2a52-5a7e-4c5e-9d43-6f1b2f0d7a11"
SCHEMA = {
    "type": "object",
    "title": "Parameters",
    "properties": {"epochs": {"type": "integer"}, "retrigger": {"type": "object"}},
}

_TERMINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}
_ID = r"([0-9a-fA-F-]{36})"
_CREATE = re.compile(rf"^/api/deployments/{_ID}/create_flow_run$")
_DEPLOYMENT = re.compile(rf"^/api/deployments/{_ID}$")
_BY_NAME = re.compile(r"^/api/deployments/name/([^/]+)/([^/]+)$")
_FLOW_RUN = re.compile(rf"^/api/flow_runs/{_ID}$")
_SET_STATE = re.compile(rf"^/api/flow_runs/{_ID}/set_state$")


def state(kind: str, name: str | None = None, message: str | None = None) -> dict[str, Any]:
    return {"type": kind, "name": name or kind.title(), "message": message}


class PrefectServer(RecordingServer):
    """One deployment of flow ``train-fraud-scorer``; flow runs start SCHEDULED."""

    kind = "prefect"
    pipeline = f"{FLOW}/{DEPLOYMENT}"

    def __init__(
        self,
        *,
        auth: AuthType = AuthType.BEARER,
        schema: dict[str, Any] | None = SCHEMA,
        options: PrefectOptions | None = None,
        base_url: str = BASE_URL,
    ) -> None:
        super().__init__(
            base_url,
            options or PrefectOptions(),
            auth=auth,
            secret=API_KEY if auth is AuthType.BEARER else None,
        )
        self.auth = auth
        self.deployments: dict[str, dict[str, Any]] = {
            DEPLOYMENT_ID: {
                "id": DEPLOYMENT_ID,
                "name": DEPLOYMENT,
                "flow_id": str(uuid.uuid4()),
                "parameters": {"epochs": 1},
                "parameter_openapi_schema": schema,
                "tags": ["ml"],
            }
        }
        self.flow_runs: dict[str, dict[str, Any]] = {}
        self.launched = 0

    # -- Server protocol ------------------------------------------------------------------------
    def finish(self, external_id: str, state_: RunState) -> None:
        kind = {RunState.SUCCEEDED: "COMPLETED", RunState.FAILED: "FAILED"}[state_]
        self.set_state(external_id, kind)

    def set_state(self, external_id: str, kind: str | None, name: str | None = None) -> None:
        """Put a flow run in any raw state type (tests of the state mapping)."""
        run = self.flow_runs[external_id]
        run["state"] = None if kind is None else state(kind, name)
        run["state_type"] = kind

    # -- HTTP -----------------------------------------------------------------------------------
    def serve(self, request: httpx.Request) -> httpx.Response:
        if self.auth is AuthType.BEARER and request.headers.get("authorization") != (
            f"Bearer {API_KEY}"
        ):
            return httpx.Response(401, json={"detail": "Unauthorized"})
        path, method = request.url.path, request.method
        if (match := _CREATE.match(path)) and method == "POST":
            return self._create(match.group(1), json.loads(request.content))
        if (match := _DEPLOYMENT.match(path)) and method == "GET":
            return self._found(self.deployments.get(match.group(1)), "Deployment")
        if (match := _BY_NAME.match(path)) and method == "GET":
            flow, name = match.groups()
            found = next(
                (d for d in self.deployments.values() if flow == FLOW and d["name"] == name), None
            )
            return self._found(found, "Deployment")
        if (match := _FLOW_RUN.match(path)) and method == "GET":
            return self._found(self.flow_runs.get(match.group(1)), "Flow run")
        if (match := _SET_STATE.match(path)) and method == "POST":
            return self._set_state(match.group(1), json.loads(request.content))
        return httpx.Response(404, json={"detail": "Not Found"})

    @staticmethod
    def _found(item: dict[str, Any] | None, what: str) -> httpx.Response:
        if item is None:
            return httpx.Response(404, json={"detail": f"{what} not found"})
        return httpx.Response(200, json=item)

    def _create(self, deployment_id: str, body: dict[str, Any]) -> httpx.Response:
        deployment = self.deployments.get(deployment_id)
        if deployment is None:
            return httpx.Response(404, json={"detail": "Deployment not found"})
        key = body.get("idempotency_key")
        for run in self.flow_runs.values():
            if key is not None and run["idempotency_key"] == key:
                return httpx.Response(200, json=run)  # Prefect answers the existing run
        run_id = str(uuid.uuid4())
        run = {
            "id": run_id,
            "name": f"run-{len(self.flow_runs) + 1}",
            "deployment_id": deployment_id,
            "flow_id": deployment["flow_id"],
            "parameters": {**deployment["parameters"], **(body.get("parameters") or {})},
            "idempotency_key": key,
            "tags": body.get("tags") or deployment["tags"],
            "state_type": "SCHEDULED",
            "state": state("SCHEDULED"),
        }
        self.flow_runs[run_id] = run
        self.launched += 1
        return httpx.Response(201, json=run)

    def _set_state(self, run_id: str, body: dict[str, Any]) -> httpx.Response:
        run = self.flow_runs.get(run_id)
        if run is None:
            return httpx.Response(404, json={"detail": "Flow run not found"})
        wanted = body["state"]["type"]
        current = run["state_type"]
        if current in _TERMINAL and not body.get("force"):
            reason = f"This run is in terminal state {current}."
            return httpx.Response(200, json={"status": "ABORT", "details": {"reason": reason}})
        if wanted == "CANCELLING" and current in ("SCHEDULED", "PAUSED"):
            # BypassCancellingFlowRunsWithNoInfra: no infrastructure to stop yet, so Prefect
            # rejects the proposal and puts the run in CANCELLED instead.
            self.set_state(run_id, "CANCELLED")
            return httpx.Response(200, json={"status": "REJECT", "state": run["state"]})
        self.set_state(run_id, wanted)
        return httpx.Response(
            201, json={"status": "ACCEPT", "state": run["state"], "details": {"type": "accept"}}
        )


def make_server() -> PrefectServer:
    return PrefectServer()
