"""A fake Kubeflow Pipelines v2beta1 API server: runs, filtered run lists, terminate."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from retrigger.dispatch.orchestrators.base import AuthType, RunState
from retrigger.dispatch.orchestrators.kubeflow import KubeflowOptions
from tests.dispatch.orchestrators.servers import RecordingServer

TOKEN = "kfp-token"
RUNS = "/apis/v2beta1/runs"
TERMINAL = frozenset({"SUCCEEDED", "SKIPPED", "FAILED", "CANCELED"})
_FINAL = {
    RunState.SUCCEEDED: "SUCCEEDED",
    RunState.FAILED: "FAILED",
    RunState.CANCELLED: "CANCELED",
}


def status(code: int, message: str) -> httpx.Response:
    """An error as KFP's grpc-gateway renders a google.rpc.Status."""
    return httpx.Response(code, json={"code": code, "message": message, "details": []})


class KubeflowServer(RecordingServer):
    """KFP keeps runs by id; it has no idempotency key, so duplicates are possible here too."""

    kind = "kubeflow"
    pipeline = "pl-fraud"

    def __init__(self, options: KubeflowOptions | None = None) -> None:
        super().__init__(
            "http://kfp.test/pipeline",
            options or KubeflowOptions(experiment_id="exp-1", namespace="ml"),
            auth=AuthType.BEARER,
            secret=TOKEN,
        )
        self.pipelines: dict[str, set[str]] = {"pl-fraud": {"pv-1", "pv-2"}}
        self.runs: dict[str, dict[str, Any]] = {}

    @property
    def launched(self) -> int:
        return len(self.runs)

    def finish(self, external_id: str, state: RunState) -> None:
        self.runs[external_id]["state"] = _FINAL[state]

    def set_state(self, run_id: str, state: str) -> None:
        """Put a run in any KFP state (tests of the state mapping)."""
        self.runs[run_id]["state"] = state

    def serve(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return status(401, "Unauthenticated")
        path = request.url.path.removeprefix("/pipeline")
        if path == RUNS and request.method == "GET":
            return self._list(request)
        if path == RUNS and request.method == "POST":
            return self._create(json.loads(request.content))
        run_id = path.removeprefix(RUNS + "/")
        if run_id.endswith(":terminate") and request.method == "POST":
            return self._terminate(run_id.removesuffix(":terminate"))
        if path.startswith(RUNS + "/") and request.method == "GET":
            run = self.runs.get(run_id)
            return httpx.Response(200, json=run) if run else status(404, "run not found")
        return status(404, f"no route {request.method} {path}")

    def _list(self, request: httpx.Request) -> httpx.Response:
        runs = list(self.runs.values())
        raw = request.url.params.get("filter")
        if raw:
            try:
                predicates = json.loads(raw)["predicates"]
            except (ValueError, KeyError, TypeError):
                return status(400, "Invalid filter")
            for p in predicates:
                if p.get("operation") != "EQUALS" or "string_value" not in p:
                    return status(400, f"unsupported predicate {p}")
                runs = [r for r in runs if r.get(p["key"]) == p["string_value"]]
        experiment = request.url.params.get("experiment_id")
        if experiment:
            runs = [r for r in runs if r["experiment_id"] == experiment]
        runs.sort(key=lambda r: r["created_at"], reverse=True)
        # proto3 JSON leaves out empty and zero fields, so an empty list is just {}
        return httpx.Response(200, json={"runs": runs, "total_size": len(runs)} if runs else {})

    def _create(self, body: dict[str, Any]) -> httpx.Response:
        if not body.get("display_name"):
            return status(400, "Invalid input error: run display name is required")
        reference = body.get("pipeline_version_reference") or {}
        versions = self.pipelines.get(reference.get("pipeline_id", ""))
        version = reference.get("pipeline_version_id")
        if versions is None or (version is not None and version not in versions):
            return status(404, "pipeline version not found")
        parameters = (body.get("runtime_config") or {}).get("parameters", {})
        if not isinstance(parameters, dict):
            return status(400, "runtime_config.parameters must be an object")
        run_id = str(uuid.uuid4())
        run = {
            **body,
            "run_id": run_id,
            "experiment_id": body.get("experiment_id", "default"),
            "storage_state": "AVAILABLE",
            "state": "PENDING",
            "created_at": f"2024-05-08T00:00:{len(self.runs):02d}Z",
        }
        self.runs[run_id] = run
        return httpx.Response(200, json=run)

    def _terminate(self, run_id: str) -> httpx.Response:
        run = self.runs.get(run_id)
        if run is None:
            return status(404, "run not found")
        if run["state"] in TERMINAL:
            return status(400, "Failed to terminate a run: run already finished")
        run["state"] = "CANCELED"  # this fake's workers stop at once
        return httpx.Response(200, json={})


def make_server() -> KubeflowServer:
    return KubeflowServer()
