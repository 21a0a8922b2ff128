"""Kubeflow Pipelines v2 adapter (``/apis/v2beta1``): one run per idempotency key.

KFP has no idempotency key, so a run is created with ``display_name`` = the key and found again by
that name (``GET /apis/v2beta1/runs`` with a display_name EQUALS filter) before creating. Remaining
race: two processes submitting one key at the same instant both miss the lookup; a per-key lock
closes it within a process and the dispatcher's database claim (one claimer per run) across them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    KeyLocks,
    Orchestrator,
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
    launch_context,
)
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable

RUNS = "/apis/v2beta1/runs"

_STATES: dict[str, RunState] = {
    "RUNTIME_STATE_UNSPECIFIED": RunState.QUEUED,
    "PENDING": RunState.QUEUED,
    "RUNNING": RunState.RUNNING,
    "CANCELING": RunState.RUNNING,
    "PAUSED": RunState.RUNNING,
    "SUCCEEDED": RunState.SUCCEEDED,
    # A skipped run reused cached results of an identical earlier run: its outputs exist.
    "SKIPPED": RunState.SUCCEEDED,
    "FAILED": RunState.FAILED,
    "CANCELED": RunState.CANCELLED,
}


class KubeflowOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    experiment_id: str | None = None
    """Experiment the runs are created in and looked up within; KFP's default one when unset."""
    namespace: str | None = None
    """Namespace (multi-user KFP) the run lookup is restricted to."""
    context_parameters: bool = False
    """Also pass the context as ``retrigger_<name>`` runtime parameters (``retrigger_product``,
    ``retrigger_run_id``...). Off by default because KFP rejects a run whose parameters the
    pipeline does not declare; the context always goes into the run's description."""


class KubeflowOrchestrator(Orchestrator):
    kind = "kubeflow"
    options_model = KubeflowOptions
    auth_types = frozenset({AuthType.NONE, AuthType.BEARER})

    _locks: ClassVar[KeyLocks] = KeyLocks()

    @property
    def options(self) -> KubeflowOptions:
        assert isinstance(self.connection.options, KubeflowOptions)
        return self.connection.options

    async def submit(self, request: RetrainRequest) -> RunRef:
        key = request.idempotency_key
        reference = _version_reference(request.pipeline)
        async with self._locks.hold((self.connection.name, self.connection.base_url, key)):
            run = await self._find(key)
            if run is None:
                run = await self._create(request, reference)
        return self._ref(run)

    async def get_status(self, ref: RunRef) -> RemoteStatus:
        response = await self.request("GET", f"{RUNS}/{quote(ref.external_id, safe='')}")
        run = self._run_of(self.json_of(response))
        raw = run.get("state") or "RUNTIME_STATE_UNSPECIFIED"
        if not isinstance(raw, str):
            raise self.malformed(f"run {ref.external_id} state is {raw!r}")
        state = _STATES.get(raw)
        error = run.get("error")
        message = error.get("message") if isinstance(error, dict) else None
        detail = f"{raw}: {message}" if message else raw.lower()
        if state is None:
            return RemoteStatus(RunState.RUNNING, f"unknown KFP state {raw}")
        return RemoteStatus(state, detail)

    async def cancel(self, ref: RunRef) -> None:
        if (await self.get_status(ref)).state.terminal:
            return
        path = f"{RUNS}/{quote(ref.external_id, safe='')}:terminate"
        try:
            await self.request("POST", path)
        except (OrchestratorRejected, OrchestratorUnavailable):
            # The run may have ended between the two calls; then there is nothing to stop.
            if (await self.get_status(ref)).state.terminal:
                return
            raise

    async def _find(self, key: str) -> dict[str, Any] | None:
        """The newest run named ``key``, or None."""
        predicate = {"key": "display_name", "operation": "EQUALS", "string_value": key}
        params: dict[str, Any] = {
            "filter": json.dumps({"predicates": [predicate]}),
            "page_size": 10,
            "sort_by": "created_at desc",
        }
        if self.options.namespace:
            params["namespace"] = self.options.namespace
        if self.options.experiment_id:
            params["experiment_id"] = self.options.experiment_id
        body = self.json_of(await self.request("GET", RUNS, params=params))
        if not isinstance(body, dict):
            raise self.malformed("run list is not an object")
        runs = body.get("runs") or []  # proto3 JSON omits an empty list
        if not isinstance(runs, list):
            raise self.malformed("'runs' is not a list")
        for item in runs:
            run = self._run_of(item)
            if run.get("display_name") == key:
                return run
        return None

    async def _create(self, request: RetrainRequest, reference: dict[str, str]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "display_name": request.idempotency_key,
            "description": _description(request),
            "pipeline_version_reference": reference,
            "runtime_config": {"parameters": self._parameters(request)},
        }
        if self.options.experiment_id:
            body["experiment_id"] = self.options.experiment_id
        return self._run_of(self.json_of(await self.request("POST", RUNS, json_body=body)))

    def _parameters(self, request: RetrainRequest) -> dict[str, Any]:
        parameters = dict(request.parameters)
        if self.options.context_parameters:
            for name, value in launch_context(request).items():
                if value is not None:  # a null would fail KFP's typed parameter check
                    parameters[f"retrigger_{name}"] = value
        return parameters

    def _run_of(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("run_id"), str):
            raise self.malformed("a run without a string 'run_id'")
        return body

    def _ref(self, run: Mapping[str, Any]) -> RunRef:
        run_id: str = run["run_id"]
        url = f"{self.connection.base_url.rstrip('/')}/#/runs/details/{run_id}"
        return RunRef(external_id=run_id, url=url, data={"display_name": run.get("display_name")})


def _version_reference(pipeline: str) -> dict[str, str]:
    """``pipeline_id`` or ``pipeline_id/pipeline_version_id`` as a pipeline_version_reference."""
    pipeline_id, _, version_id = pipeline.partition("/")
    if not pipeline_id or "/" in version_id:
        raise OrchestratorRejected(
            f"kubeflow: pipeline {pipeline!r} is not 'pipeline_id' "
            "or 'pipeline_id/pipeline_version_id'"
        )
    reference = {"pipeline_id": pipeline_id}
    if version_id:
        reference["pipeline_version_id"] = version_id
    return reference


def _description(request: RetrainRequest) -> str:
    context = launch_context(request)
    text = f"retrigger {request.idempotency_key}: " + json.dumps(context, sort_keys=True)
    # KFP stores descriptions in a bounded column; the display name already carries the key.
    return text if len(text) <= 1000 else text[:997] + "..."
