"""A fake GitHub REST API for Actions: workflow dispatch, workflow runs, cancel."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import httpx

from retrigger.dispatch.orchestrators.base import AuthType, RunState
from retrigger.dispatch.orchestrators.github_actions import GitHubActionsOptions
from tests.dispatch.orchestrators.servers import RecordingServer

TOKEN = "ghp_faketoken"
REPO = "acme/models"
API = "https://api.github.test"
_CONCLUSION = {
    RunState.SUCCEEDED: "success",
    RunState.FAILED: "failure",
    RunState.CANCELLED: "cancelled",
}


def message(code: int, text: str) -> httpx.Response:
    """An error as GitHub renders it."""
    return httpx.Response(code, json={"message": text, "documentation_url": "https://docs"})


class GitHubActionsServer(RecordingServer):
    """One repository with one workflow whose ``run-name`` shows the key input.

    ``hide_runs`` plays GitHub's lag between a dispatch and its run being listed.
    """

    kind = "github_actions"
    pipeline = "retrain.yml"

    def __init__(
        self,
        options: GitHubActionsOptions | None = None,
        inputs: frozenset[str] | None = frozenset({"epochs", "learning_rate"}),
    ) -> None:
        super().__init__(
            API,
            options or GitHubActionsOptions(repository=REPO),
            auth=AuthType.GITHUB_TOKEN,
            secret=TOKEN,
        )
        assert isinstance(self.connection.options, GitHubActionsOptions)
        self.key_input = self.connection.options.key_input
        # Inputs the workflow declares (None: any); GitHub refuses undeclared ones.
        self.declared = None if inputs is None else inputs | {self.key_input}
        self.runs: dict[int, dict[str, Any]] = {}
        self.hide_runs = False
        self.hidden: set[int] = set()

    @property
    def launched(self) -> int:
        return len(self.runs)

    def finish(self, external_id: str, state: RunState) -> None:
        self.set_state(int(external_id), "completed", _CONCLUSION[state])

    def set_state(self, run_id: int, status: str, conclusion: str | None = None) -> None:
        """Put a run in any status/conclusion (tests of the state mapping)."""
        self.runs[run_id].update(status=status, conclusion=conclusion)

    def serve(self, request: httpx.Request) -> httpx.Response:
        if request.headers.get("authorization") != f"Bearer {TOKEN}":
            return message(401, "Bad credentials")
        if request.headers.get("x-github-api-version") != "2022-11-28":
            return message(400, "unsupported API version")
        prefix = f"/repos/{REPO}/actions/"
        if not request.url.path.startswith(prefix):
            return message(404, "Not Found")
        parts = request.url.path.removeprefix(prefix).split("/")
        match request.method, parts:
            case "POST", ["workflows", self.pipeline, "dispatches"]:
                return self._dispatch(json.loads(request.content))
            case "GET", ["workflows", self.pipeline, "runs"]:
                return self._list(request.url.params)
            case "GET", ["runs", run_id] if run_id.isdigit() and int(run_id) in self.runs:
                return httpx.Response(200, json=self.runs[int(run_id)])
            case "POST", ["runs", run_id, "cancel"] if (
                run_id.isdigit() and int(run_id) in self.runs
            ):
                return self._cancel(self.runs[int(run_id)])
        return message(404, "Not Found")

    def _dispatch(self, body: dict[str, Any]) -> httpx.Response:
        inputs = body.get("inputs") or {}
        if not isinstance(body.get("ref"), str):
            return message(422, "Invalid request. ref is required")
        if len(inputs) > 25:
            return message(422, "you may only define up to 25 inputs")
        if any(not isinstance(v, str) for v in inputs.values()):
            return message(422, "For 'properties/inputs', values must be strings")
        unexpected = set(inputs) - self.declared if self.declared is not None else set()
        if unexpected:
            return message(422, f"Unexpected inputs provided: {sorted(unexpected)}")
        run_id = 9000 + len(self.runs)
        self.runs[run_id] = {
            "id": run_id,
            "name": "Retrain",
            "display_title": f"retrain {inputs.get(self.key_input, '')}",
            "event": "workflow_dispatch",
            "head_branch": body["ref"],
            "status": "queued",
            "conclusion": None,
            "created_at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "html_url": f"https://github.test/{REPO}/actions/runs/{run_id}",
            "url": f"{API}/repos/{REPO}/actions/runs/{run_id}",
            "inputs": inputs,
        }
        if self.hide_runs:
            self.hidden.add(run_id)
        if body.get("return_run_details"):
            run = self.runs[run_id]
            details = {
                "workflow_run_id": run_id,
                "run_url": run["url"],
                "html_url": run["html_url"],
            }
            return httpx.Response(200, json=details)
        return httpx.Response(204)

    def _list(self, params: httpx.QueryParams) -> httpx.Response:
        runs = [r for r in self.runs.values() if r["id"] not in self.hidden]
        if params.get("event"):
            runs = [r for r in runs if r["event"] == params["event"]]
        created = params.get("created", "")
        if created.startswith(">="):
            runs = [r for r in runs if r["created_at"] >= created[2:]]
        runs.sort(key=lambda r: r["id"], reverse=True)
        page = runs[: int(params.get("per_page", 30))]
        return httpx.Response(200, json={"total_count": len(runs), "workflow_runs": page})

    def reveal(self) -> None:
        """Let every dispatched run be listed."""
        self.hidden.clear()

    @staticmethod
    def _cancel(run: dict[str, Any]) -> httpx.Response:
        if run["status"] == "completed":
            return message(409, "Cannot cancel a workflow run that is completed.")
        run.update(status="completed", conclusion="cancelled")
        return httpx.Response(202, json={})


def make_server() -> GitHubActionsServer:
    return GitHubActionsServer()
