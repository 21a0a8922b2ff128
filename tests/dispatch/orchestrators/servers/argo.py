"""A fake Argo Server: submit from a WorkflowTemplate, get and terminate workflows."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx

from retrigger.dispatch.orchestrators.argo import ArgoOptions
from retrigger.dispatch.orchestrators.base import AuthType, RunState
from tests.dispatch.orchestrators.servers import RecordingServer

TOKEN = "argo-token"
NAMESPACE = "ml"
COMPLETED = frozenset({"Succeeded", "Failed", "Error"})


def status(code: int, grpc_code: int, message: str) -> httpx.Response:
    """An error as the Argo Server's grpc-gateway renders it."""
    return httpx.Response(code, json={"code": grpc_code, "message": message})


class ArgoServer(RecordingServer):
    """Workflow names are unique per namespace, as Kubernetes makes them."""

    kind = "argo"
    pipeline = "train-fraud-scorer"

    def __init__(self, options: ArgoOptions | None = None) -> None:
        super().__init__(
            "https://argo.test:2746",
            options or ArgoOptions(namespace=NAMESPACE),
            auth=AuthType.BEARER,
            secret=TOKEN,
        )
        self.templates = {self.pipeline}
        self.workflows: dict[str, dict[str, Any]] = {}
        self.archive: dict[str, dict[str, Any]] | None = {}  # by uid; None: no archive configured
        self.submitted = 0

    @property
    def launched(self) -> int:
        return self.submitted

    def garbage_collect(self, name: str) -> None:
        """Delete a workflow as its TTL would; it is archived when the server has an archive."""
        workflow = self.workflows.pop(name)
        if self.archive is not None:
            self.archive[workflow["metadata"]["uid"]] = workflow

    def finish(self, external_id: str, state: RunState) -> None:
        workflow = self.workflows[external_id]
        if state is RunState.CANCELLED:
            self._terminate(workflow)
        else:
            workflow["status"] = {"phase": "Succeeded" if state is RunState.SUCCEEDED else "Failed"}

    def set_phase(self, name: str, phase: str | None, message: str = "") -> None:
        """Put a workflow in any phase (tests of the phase mapping); None: no status yet."""
        self.workflows[name]["status"] = {} if phase is None else {"phase": phase}
        if message:
            self.workflows[name]["status"]["message"] = message

    def serve(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return status(401, 16, "token not valid")
        parts = request.url.path.strip("/").split("/")
        if parts[:3] == ["api", "v1", "archived-workflows"] and request.method == "GET":
            return self._archived(request, parts[3:])
        if parts[:3] != ["api", "v1", "workflows"] or len(parts) < 5:
            return status(404, 5, f"no route {request.url.path}")
        namespace, rest = parts[3], parts[4:]
        if namespace != NAMESPACE:
            return status(403, 7, f"namespace {namespace} is forbidden")
        if rest == ["submit"] and request.method == "POST":
            return self._submit(json.loads(request.content))
        workflow = self.workflows.get(rest[0])
        if workflow is None:
            return status(404, 5, f'workflows.argoproj.io "{rest[0]}" not found')
        if len(rest) == 1 and request.method == "GET":
            return httpx.Response(200, json=workflow)
        if rest[1:] == ["terminate"] and request.method == "PUT":
            if workflow["status"].get("phase") in COMPLETED:
                name = rest[0]
                message = f'cannot shutdown a completed workflow: workflow: "{name}"'
                return status(500, 2, message)
            self._terminate(workflow)
            return httpx.Response(200, json=workflow)
        return status(405, 12, f"method {request.method} not allowed")

    def archive_uid(self, name: str) -> str:
        assert self.archive is not None
        return next(uid for uid, w in self.archive.items() if w["metadata"]["name"] == name)

    def _archived(self, request: httpx.Request, rest: list[str]) -> httpx.Response:
        if self.archive is None:
            return status(501, 12, "workflow archive is not configured")
        namespace = request.url.params.get("namespace", "")
        if rest:  # GET /api/v1/archived-workflows/{uid}
            workflow = self.archive.get(rest[0])
            if workflow is None or namespace not in ("", workflow["metadata"]["namespace"]):
                return status(404, 5, "not found")
            return httpx.Response(200, json=workflow)
        selector = dict(
            term.split("=", 1)
            for term in request.url.params.get("listOptions.fieldSelector", "").split(",")
            if term
        )
        items = []
        for workflow in self.archive.values():
            metadata = workflow["metadata"]
            wanted = {
                "metadata.name": metadata["name"],
                "metadata.namespace": metadata["namespace"],
            }
            if any(wanted.get(key) != value for key, value in selector.items()):
                continue
            if namespace and metadata["namespace"] != namespace:
                continue
            # the list carries metadata and a summary of the status, not outputs or nodes
            items.append({"metadata": metadata, "status": {"phase": workflow["status"]["phase"]}})
        return httpx.Response(200, json={"metadata": {}, "items": items or None})

    def _submit(self, body: dict[str, Any]) -> httpx.Response:
        if body.get("resourceKind") != "WorkflowTemplate":
            return status(400, 3, "resourceKind must be WorkflowTemplate here")
        if body.get("resourceName") not in self.templates:
            return status(404, 5, f'workflowtemplates "{body.get("resourceName")}" not found')
        options = body.get("submitOptions") or {}
        name = options.get("name")
        if not name:
            return status(400, 3, "this fake requires submitOptions.name")
        if name in self.workflows:
            return status(409, 6, f'workflows.argoproj.io "{name}" already exists')
        parameters = []
        for item in options.get("parameters") or []:
            key, sep, value = item.partition("=")
            if not sep:
                return status(400, 3, f"expected parameter of the form: NAME=VALUE: {item}")
            parameters.append({"name": key, "value": value})
        labels = dict(
            pair.split("=", 1) for pair in (options.get("labels") or "").split(",") if pair
        )
        labels["workflows.argoproj.io/workflow-template"] = body["resourceName"]
        workflow = {
            "metadata": {
                "name": name,
                "namespace": NAMESPACE,
                "uid": str(uuid.uuid4()),
                "labels": labels,
            },
            "spec": {
                "workflowTemplateRef": {"name": body["resourceName"]},
                "arguments": {"parameters": parameters},
            },
            "status": {},
        }
        self.workflows[name] = workflow
        self.submitted += 1
        return httpx.Response(200, json=workflow)

    @staticmethod
    def _terminate(workflow: dict[str, Any]) -> None:
        # As the controller does: shutdown set on the spec, the workflow then ends Failed.
        workflow["spec"]["shutdown"] = "Terminate"
        workflow["status"] = {"phase": "Failed", "message": "Stopped with strategy 'Terminate'"}


def make_server() -> ArgoServer:
    return ArgoServer()
