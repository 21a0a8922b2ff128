"""A fake Dagster webserver GraphQL API: runsOrError, launchRun, runOrError, terminateRun.

Only the operations the adapter sends are understood, recognised by their root field; answers
follow Dagster's typed-result unions (errors come back as HTTP 200 with a ``__typename``).
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx

from retrigger.dispatch.orchestrators.base import AuthType, RunState
from retrigger.dispatch.orchestrators.dagster import DagsterOptions
from tests.dispatch.orchestrators.servers import RecordingServer

BASE_URL = "http://dagster.test:3000"
LOCATION, REPOSITORY, JOB = "ml_pipelines", "__repository__", "train_fraud_scorer"
RUN_CONFIG_KEYS = {"ops", "resources", "execution", "loggers"}

_ROOT = re.compile(r"\b(runsOrError|launchRun|runOrError|terminateRun)\s*\(")
_TERMINAL = {"SUCCESS", "FAILURE", "CANCELED"}


class DagsterServer(RecordingServer):
    """Runs keyed by run id; a launched run is QUEUED until told otherwise."""

    kind = "dagster"
    pipeline = JOB
    PARAMETERS = {"ops": {"train": {"config": {"epochs": 3}}}}

    def __init__(
        self,
        *,
        parameters_as: str = "run_config",
        auth: AuthType = AuthType.NONE,
        secret: str | None = None,
        api_token_header: str | None = None,
    ) -> None:
        options = DagsterOptions(
            repository_location_name=LOCATION,
            parameters_as=parameters_as,  # type: ignore[arg-type]
            api_token_header=api_token_header,
        )
        super().__init__(BASE_URL, options, auth=auth, secret=secret)
        self.jobs = {(LOCATION, REPOSITORY, JOB)}
        self.runs: dict[str, dict[str, Any]] = {}
        self.launched = 0
        self._answers: list[httpx.Response] = []

    # -- Server protocol ------------------------------------------------------------------------
    def finish(self, external_id: str, state: RunState) -> None:
        status = {RunState.SUCCEEDED: "SUCCESS", RunState.FAILED: "FAILURE"}[state]
        self.runs[external_id]["status"] = status

    def answer_next(self, payload: Any, status: int = 200) -> None:
        """Answer the next request, whatever it asks, with ``payload`` (JSON; a str as text)."""
        if isinstance(payload, str):
            self._answers.append(httpx.Response(status, text=payload))
        else:
            self._answers.append(httpx.Response(status, json=payload))

    def operations(self) -> list[tuple[str, dict[str, Any]]]:
        """Every request received, as (root field, variables)."""
        found = []
        for request in self.requests:
            body = json.loads(request.content)
            match = _ROOT.search(body["query"])
            found.append((match.group(1) if match else "?", body.get("variables") or {}))
        return found

    # -- HTTP -----------------------------------------------------------------------------------
    def serve(self, request: httpx.Request) -> httpx.Response:
        if self._answers:
            return self._answers.pop(0)
        if request.url.path != "/graphql" or request.method != "POST":
            return httpx.Response(404, text="Not Found")
        body = json.loads(request.content)
        match = _ROOT.search(body.get("query", ""))
        if match is None:
            error = {"message": "Cannot query field on type Query", "locations": []}
            return httpx.Response(200, json={"data": None, "errors": [error]})
        field, variables = match.group(1), body.get("variables") or {}
        result = getattr(self, f"_{field}")(variables)
        return httpx.Response(200, json={"data": {field: result}})

    def _runsOrError(self, variables: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        wanted = {(t["key"], t["value"]) for t in variables["filter"].get("tags", [])}
        found = [
            {"runId": run["runId"], "status": run["status"]}
            for run in self.runs.values()
            if wanted <= set(run["tags"].items())
        ]
        return {"__typename": "Runs", "results": found[:1]}

    def _launchRun(self, variables: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        params = variables["executionParams"]
        selector = params["selector"]
        job = (selector["repositoryLocationName"], selector["repositoryName"], selector["jobName"])
        if job not in self.jobs:
            return {
                "__typename": "PipelineNotFoundError",
                "message": f"Could not find Pipeline {selector['jobName']}",
            }
        unknown = set(params.get("runConfigData") or {}) - RUN_CONFIG_KEYS
        if unknown:
            errors = [
                {"message": f'Received unexpected config entry "{key}" at the root.'}
                for key in sorted(unknown)
            ]
            return {"__typename": "RunConfigValidationInvalid", "errors": errors}
        tags = {t["key"]: t["value"] for t in params["executionMetadata"]["tags"]}
        if not all(isinstance(v, str) for v in tags.values()):
            return {"__typename": "PythonError", "message": "tag values must be strings"}
        run_id = str(uuid.uuid4())
        self.runs[run_id] = {
            "runId": run_id,
            "status": "QUEUED",
            "jobName": selector["jobName"],
            "runConfig": params.get("runConfigData") or {},
            "tags": tags,
        }
        self.launched += 1
        return {"__typename": "LaunchRunSuccess", "run": {"runId": run_id, "status": "QUEUED"}}

    def _runOrError(self, variables: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        run = self.runs.get(variables["runId"])
        if run is None:
            return {
                "__typename": "RunNotFoundError",
                "message": f"Run {variables['runId']} could not be found.",
            }
        return {"__typename": "Run", "runId": run["runId"], "status": run["status"]}

    def _terminateRun(self, variables: dict[str, Any]) -> dict[str, Any]:  # noqa: N802
        run = self.runs.get(variables["runId"])
        if run is None:
            return {"__typename": "RunNotFoundError", "message": "Run could not be found."}
        if run["status"] in _TERMINAL:
            return {
                "__typename": "TerminateRunFailure",
                "message": f"Run {run['runId']} is not in a started state.",
            }
        # A queued run is canceled outright; the fake's "launcher" also stops a started one at once.
        run["status"] = "CANCELED"
        return {"__typename": "TerminateRunSuccess", "run": {"runId": run["runId"]}}


def make_server() -> DagsterServer:
    return DagsterServer()
