"""Argo Workflows adapter: submits a WorkflowTemplate as a workflow named after the key.

The fixed workflow name is the idempotency primitive: a repeated submission answers 409
AlreadyExists and the existing workflow is returned. A workflow deleted by its TTL or garbage
collection answers 404 to a status poll; it is then looked up in the workflow archive (when the
Argo Server has one), and only a workflow in neither place surfaces as OrchestratorRejected.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    Orchestrator,
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
    launch_context,
)
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable

RUN_ID_LABEL = "retrigger/run-id"
PRODUCT_LABEL = "retrigger/product"

_PHASES: dict[str, RunState] = {
    "": RunState.QUEUED,
    "Pending": RunState.QUEUED,
    "Running": RunState.RUNNING,
    "Succeeded": RunState.SUCCEEDED,
    "Failed": RunState.FAILED,
    "Error": RunState.FAILED,
}
_LABEL_JUNK = re.compile(r"[^A-Za-z0-9_.-]+")
_NAME_JUNK = re.compile(r"[^a-z0-9.-]+")


class ArgoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    namespace: str = Field(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
    """Kubernetes namespace of the WorkflowTemplates and the workflows submitted from them."""
    context_parameter: str | None = Field("retrigger", pattern=r"^[A-Za-z0-9][-A-Za-z0-9_]*$")
    """Workflow parameter receiving the launch context as JSON (``{{workflow.parameters.
    retrigger}}``); Argo accepts arguments a template does not declare. None to leave it out."""


def workflow_name(key: str) -> str:
    """The workflow name for an idempotency key: a DNS-1123 subdomain, as Kubernetes requires."""
    name = _NAME_JUNK.sub("-", key.lower()).strip("-.")[:253].rstrip("-.")
    if not name:
        raise OrchestratorRejected(f"argo: no valid workflow name in key {key!r}")
    return name


def label_value(value: object) -> str:
    """``value`` made a valid Kubernetes label value (at most 63 alphanumerics, ``-_.``)."""
    return _LABEL_JUNK.sub("-", str(value))[:63].strip("-_.")


class ArgoOrchestrator(Orchestrator):
    kind = "argo"
    options_model = ArgoOptions
    auth_types = frozenset({AuthType.NONE, AuthType.BEARER})

    @property
    def options(self) -> ArgoOptions:
        assert isinstance(self.connection.options, ArgoOptions)
        return self.connection.options

    @property
    def _base(self) -> str:
        return f"/api/v1/workflows/{quote(self.options.namespace, safe='')}"

    async def submit(self, request: RetrainRequest) -> RunRef:
        name = workflow_name(request.idempotency_key)
        labels = {
            RUN_ID_LABEL: label_value(request.run_id),
            PRODUCT_LABEL: label_value(request.product),
        }
        body = {
            "namespace": self.options.namespace,
            "resourceKind": "WorkflowTemplate",
            "resourceName": request.pipeline,
            "submitOptions": {
                "name": name,
                "parameters": self._parameters(request),
                "labels": ",".join(f"{k}={v}" for k, v in labels.items()),
            },
        }
        response = await self.request("POST", f"{self._base}/submit", json_body=body, allow=(409,))
        if response.status_code != 409:
            return self._ref(self._workflow_of(self.json_of(response)))
        workflow = await self._get(name)
        found = workflow["metadata"].get("labels") or {}
        if found.get(RUN_ID_LABEL, labels[RUN_ID_LABEL]) != labels[RUN_ID_LABEL]:
            raise OrchestratorRejected(
                f"argo: workflow {name} exists but belongs to run {found[RUN_ID_LABEL]}"
            )
        return self._ref(workflow)

    async def get_status(self, ref: RunRef) -> RemoteStatus:
        workflow = await self._live_or_archived(ref.external_id)
        status = workflow.get("status") or {}
        if not isinstance(status, dict):
            raise self.malformed(f"workflow {ref.external_id} status is not an object")
        phase = status.get("phase") or ""
        message = status.get("message") or ""
        state = _PHASES.get(phase) if isinstance(phase, str) else None
        if state is None:
            return RemoteStatus(RunState.RUNNING, f"unknown Argo phase {phase!r}")
        shutdown = (workflow.get("spec") or {}).get("shutdown")
        if state is RunState.FAILED and shutdown in ("Terminate", "Stop"):
            # Argo reports a terminated workflow as Failed; spec.shutdown says it was stopped.
            state = RunState.CANCELLED
        detail = f"{phase or 'queued'}: {message}" if message else (phase or "queued")
        return RemoteStatus(state, detail, outputs=_outputs(status))

    async def cancel(self, ref: RunRef) -> None:
        if (await self.get_status(ref)).state.terminal:
            return
        name = quote(ref.external_id, safe="")
        body = {"namespace": self.options.namespace, "name": ref.external_id}
        try:
            await self.request("PUT", f"{self._base}/{name}/terminate", json_body=body)
        except (OrchestratorRejected, OrchestratorUnavailable):
            # Argo refuses to shut down a completed workflow; ending meanwhile is not an error.
            if (await self.get_status(ref)).state.terminal:
                return
            raise

    def _parameters(self, request: RetrainRequest) -> list[str]:
        bad = [name for name in request.parameters if not name or "=" in name]
        if bad:
            raise OrchestratorRejected(f"argo: invalid parameter names {bad!r}")
        values = {
            name: value if isinstance(value, str) else json.dumps(value)
            for name, value in request.parameters.items()
        }
        context_parameter = self.options.context_parameter
        if context_parameter and context_parameter not in values:
            values[context_parameter] = json.dumps(launch_context(request), sort_keys=True)
        return [f"{name}={value}" for name, value in values.items()]

    async def _get(self, name: str) -> dict[str, Any]:
        response = await self.request("GET", f"{self._base}/{quote(name, safe='')}")
        return self._workflow_of(self.json_of(response))

    async def _live_or_archived(self, name: str) -> dict[str, Any]:
        path = f"{self._base}/{quote(name, safe='')}"
        response = await self.request("GET", path, allow=(404,))
        if response.status_code != 404:
            return self._workflow_of(self.json_of(response))
        archived = await self._archived(name)
        if archived is None:
            raise OrchestratorRejected(
                f"argo: workflow {name} answered 404 (deleted, e.g. by its TTL) and is not in "
                "the workflow archive"
            )
        return archived

    async def _archived(self, name: str) -> dict[str, Any] | None:
        """The archived copy of workflow ``name``; None when absent or no archive is configured."""
        namespace = self.options.namespace
        params = {
            "namespace": namespace,
            "listOptions.fieldSelector": f"metadata.namespace={namespace},metadata.name={name}",
        }
        # Argo answers 501 (gRPC Unimplemented) or 404 on servers without an archive.
        response = await self.request(
            "GET", "/api/v1/archived-workflows", params=params, allow=(404, 501)
        )
        if response.status_code in (404, 501):
            return None
        body = self.json_of(response)
        items = body.get("items") if isinstance(body, dict) else None
        for item in items if isinstance(items, list) else []:
            metadata = item.get("metadata") if isinstance(item, dict) else None
            if not isinstance(metadata, dict) or metadata.get("name") != name:
                continue
            uid = metadata.get("uid")
            if not isinstance(uid, str) or not uid:
                raise self.malformed(f"archived workflow {name} without metadata.uid")
            detail = await self.request(
                "GET",
                f"/api/v1/archived-workflows/{quote(uid, safe='')}",
                params={"namespace": namespace},
            )
            return self._workflow_of(self.json_of(detail))
        return None

    def _workflow_of(self, body: Any) -> dict[str, Any]:
        metadata = body.get("metadata") if isinstance(body, dict) else None
        if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
            raise self.malformed("a workflow without metadata.name")
        workflow: dict[str, Any] = body
        return workflow

    def _ref(self, workflow: Mapping[str, Any]) -> RunRef:
        name: str = workflow["metadata"]["name"]
        namespace = workflow["metadata"].get("namespace") or self.options.namespace
        url = f"{self.connection.base_url.rstrip('/')}/workflows/{namespace}/{name}"
        return RunRef(external_id=name, url=url, data={"namespace": namespace})


def _outputs(status: Mapping[str, Any]) -> dict[str, Any]:
    """Global output parameters (e.g. ``model_version``) the workflow exported."""
    outputs = status.get("outputs")
    parameters = outputs.get("parameters") if isinstance(outputs, dict) else None
    if not isinstance(parameters, list):
        return {}
    return {
        p["name"]: p.get("value")
        for p in parameters
        if isinstance(p, dict) and isinstance(p.get("name"), str)
    }
