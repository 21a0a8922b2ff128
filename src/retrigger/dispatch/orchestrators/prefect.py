"""Prefect 3 adapter: one flow run of a deployment per retrain request, over the REST API.

Prefect keeps the idempotency key itself: ``create_flow_run`` with a key it has seen returns the
flow run it created then, so a retried or concurrent submission launches nothing new.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

import httpx
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field

from retrigger.dispatch.orchestrators.base import (
    Orchestrator,
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
    launch_context,
)
from retrigger.errors import OrchestratorRejected

_STATES: Mapping[str, RunState] = {
    "SCHEDULED": RunState.QUEUED,
    "PENDING": RunState.QUEUED,
    "RUNNING": RunState.RUNNING,
    # Cancellation and pauses are waits on a worker or a human: the run is not over yet.
    "CANCELLING": RunState.RUNNING,
    "PAUSED": RunState.RUNNING,
    "COMPLETED": RunState.SUCCEEDED,
    "FAILED": RunState.FAILED,
    "CRASHED": RunState.FAILED,
    "CANCELLED": RunState.CANCELLED,
}


class PrefectOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    context_parameter: str | None = Field("retrigger", min_length=1)
    """Flow parameter receiving the retrigger context; null sends none.

    When the deployment publishes a parameter schema that does not declare this parameter, the
    context is left out too: the flow could not accept it and its run would fail.
    """
    tags: tuple[str, ...] = ()
    """Extra tags put on every flow run, after ``retrigger`` and ``product:<product>``."""
    ui_url: AnyHttpUrl | None = None
    """Base URL of the Prefect UI for run links; default: the API URL without its ``/api``."""


class PrefectOrchestrator(Orchestrator):
    """Creates flow runs of a deployment: ``pipeline`` is its id or ``flow-name/deployment-name``.

    Cancel requests a CANCELLING state; Prefect cancels a run no worker picked up yet at once,
    and a running one once its worker stops it. Prefect refuses the transition for a run already
    finished, which the adapter accepts silently.
    """

    kind = "prefect"
    options_model = PrefectOptions

    @property
    def options(self) -> PrefectOptions:
        assert isinstance(self.connection.options, PrefectOptions)
        return self.connection.options

    async def submit(self, request: RetrainRequest) -> RunRef:
        deployment = await self._deployment(request.pipeline)
        parameters = dict(request.parameters)
        name = self.options.context_parameter
        if name is not None and _accepts(deployment, name):
            parameters[name] = launch_context(request)
        body = {
            "parameters": parameters,
            "idempotency_key": request.idempotency_key,
            "tags": ["retrigger", f"product:{request.product}", *self.options.tags],
        }
        response = await self.request(
            "POST", f"/deployments/{deployment['id']}/create_flow_run", json_body=body
        )
        run = self._flow_run_of(response)
        return RunRef(
            external_id=run["id"],
            url=self._run_url(run["id"]),
            data={"deployment_id": deployment["id"]},
        )

    async def get_status(self, ref: RunRef) -> RemoteStatus:
        run = self._flow_run_of(await self.request("GET", self._run_path(ref)))
        state = run.get("state")
        if not isinstance(state, dict):
            # A flow run is created with a state; none means it has not been orchestrated yet.
            return RemoteStatus(RunState.QUEUED, "flow run has no state yet")
        raw, label = state.get("type"), state.get("name") or state.get("type")
        mapped = _STATES.get(raw) if isinstance(raw, str) else None
        if mapped is None:
            return RemoteStatus(RunState.RUNNING, f"unknown Prefect state type {raw!r}")
        message = state.get("message")
        detail = f"{label}: {message}" if message else f"{label}"
        return RemoteStatus(mapped, detail)

    async def cancel(self, ref: RunRef) -> None:
        body = {
            "state": {
                "type": "CANCELLING",
                "name": "Cancelling",
                "message": "Stopped by retrigger",
            },
            "force": False,
        }
        # The orchestration result (ACCEPT, REJECT, ABORT) is not checked: a REJECT or ABORT
        # means the run already ended or is already being cancelled, neither of which is an error.
        result = self.json_of(
            await self.request("POST", f"{self._run_path(ref)}/set_state", json_body=body)
        )
        if not isinstance(result, dict) or "status" not in result:
            raise self.malformed("set_state answered without an orchestration status")

    async def _deployment(self, pipeline: str) -> dict[str, Any]:
        if _is_uuid(pipeline):
            path = f"/deployments/{pipeline}"
        else:
            flow, sep, deployment = pipeline.partition("/")
            if not sep or not flow or not deployment or "/" in deployment:
                raise OrchestratorRejected(
                    f"prefect: pipeline {pipeline!r} is neither a deployment id "
                    "nor 'flow-name/deployment-name'"
                )
            path = f"/deployments/name/{quote(flow, safe='')}/{quote(deployment, safe='')}"
        found = self.json_of(await self.request("GET", path))
        if not isinstance(found, dict) or not _is_uuid(found.get("id")):
            raise self.malformed("a deployment without an id")
        return found

    def _flow_run_of(self, response: httpx.Response) -> dict[str, Any]:
        run = self.json_of(response)
        if not isinstance(run, dict) or not _is_uuid(run.get("id")):
            raise self.malformed("a flow run without an id")
        return run

    @staticmethod
    def _run_path(ref: RunRef) -> str:
        if not _is_uuid(ref.external_id):
            raise OrchestratorRejected(f"prefect: {ref.external_id!r} is not a flow run id")
        return f"/flow_runs/{ref.external_id}"

    def _run_url(self, run_id: str) -> str | None:
        ui = str(self.options.ui_url) if self.options.ui_url else None
        if ui is None:
            api = self.connection.base_url.rstrip("/")
            if not api.endswith("/api"):
                return None
            ui = api.removesuffix("/api")
        return f"{ui.rstrip('/')}/runs/flow-run/{run_id}"


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return False
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


def _accepts(deployment: Mapping[str, Any], parameter: str) -> bool:
    """Whether the deployment's flow can take ``parameter``: declared, or no schema to tell."""
    schema = deployment.get("parameter_openapi_schema")
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return True
    return parameter in properties
