"""Dagster adapter: one job run per retrain request over the webserver's GraphQL API. With no
idempotency key in Dagster, runs carry a ``retrigger/run_key`` tag looked up before launching; a
per-key lock guards one process, and the dispatcher's single claimer per run guards the rest.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Mapping
from typing import Any, ClassVar, Literal

import httpx
from pydantic import BaseModel, ConfigDict, Field

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    ConnectionConfig,
    KeyLocks,
    Orchestrator,
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
    launch_context,
)
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable

RUN_KEY_TAG = "retrigger/run_key"

_STATES: Mapping[str, RunState] = {
    "QUEUED": RunState.QUEUED,
    "NOT_STARTED": RunState.QUEUED,
    "STARTING": RunState.QUEUED,
    "STARTED": RunState.RUNNING,
    # A terminating run may still finish its current step: not over until CANCELED.
    "CANCELING": RunState.RUNNING,
    # Run by an external system that reports to Dagster; it ends with one of the states below.
    "MANAGED": RunState.RUNNING,
    "SUCCESS": RunState.SUCCEEDED,
    "FAILURE": RunState.FAILED,
    "CANCELED": RunState.CANCELLED,
}

# Dagster terminates only QUEUED and STARTED runs. A run in one of these has not got that far yet:
# asked again a moment later, the termination goes through.
_NOT_YET_TERMINABLE = frozenset({"NOT_STARTED", "STARTING"})

_FIND_RUN = """
query RetriggerFindRun($filter: RunsFilter!) {
  runsOrError(filter: $filter, limit: 1) {
    __typename
    ... on Runs { results { runId status } }
    ... on Error { message }
  }
}"""

_LAUNCH_RUN = """
mutation RetriggerLaunchRun($executionParams: ExecutionParams!) {
  launchRun(executionParams: $executionParams) {
    __typename
    ... on LaunchRunSuccess { run { runId status } }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on InvalidStepError { invalidStepKey }
    ... on InvalidOutputError { stepKey invalidOutputName }
    ... on Error { message }
  }
}"""

_RUN_STATUS = """
query RetriggerRunStatus($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId status }
    ... on Error { message }
  }
}"""

_TERMINATE_RUN = """
mutation RetriggerTerminateRun($runId: String!) {
  terminateRun(runId: $runId) {
    __typename
    ... on TerminateRunSuccess { run { runId status } }
    ... on TerminateRunFailure { message }
    ... on Error { message }
  }
}"""


class DagsterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository_location_name: str = Field(min_length=1)
    """Code location holding the job (``repositoryLocationName`` of the selector)."""
    repository_name: str = Field("__repository__", min_length=1)
    """Repository inside the location; ``__repository__`` for a ``Definitions`` object."""
    parameters_as: Literal["run_config", "tags"] = "run_config"
    """Where ``request.parameters`` go.

    ``run_config``: the parameters ARE the run config (``runConfigData``), so the policy's
    parameter template renders Dagster run config, e.g. ``{"ops": {"train": {"config": {...}}}}``.
    ``tags``: each parameter becomes a ``retrigger/param/<name>`` tag (JSON-encoded unless a
    string) and the run config stays empty, for jobs configured from tags or defaults.
    The context always travels as the ``retrigger/context`` tag (JSON), since run config is
    validated against the job's schema.
    """
    api_token_header: str | None = None
    """Send a bearer connection's secret in this header instead of ``Authorization``, e.g.
    ``Dagster-Cloud-Api-Token`` for Dagster+."""


class _TokenHeaderAuth(httpx.Auth):
    def __init__(self, header: str, token: str) -> None:
        self._header, self._token = header, token

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        request.headers[self._header] = self._token
        yield request


class DagsterOrchestrator(Orchestrator):
    """Launches job ``pipeline`` of the configured code location; status by run id.

    The tag lookup makes a retry after a lost answer safe. What it cannot close is two processes
    submitting one key at the same instant: both may find nothing and both launch. retrigger
    never does that, since only the dispatcher that claimed a run (in the database) submits it.
    """

    kind = "dagster"
    options_model = DagsterOptions

    _locks: ClassVar[KeyLocks] = KeyLocks()

    @classmethod
    def http_auth(cls, connection: ConnectionConfig) -> httpx.Auth | None:
        """Basic or bearer, optionally in the custom header ``api_token_header`` names."""
        options = connection.options
        header = options.api_token_header if isinstance(options, DagsterOptions) else None
        if header and connection.secret is not None and connection.auth is AuthType.BEARER:
            return _TokenHeaderAuth(header, connection.secret.get_secret_value())
        return super().http_auth(connection)

    @property
    def options(self) -> DagsterOptions:
        assert isinstance(self.connection.options, DagsterOptions)
        return self.connection.options

    async def submit(self, request: RetrainRequest) -> RunRef:
        key = request.idempotency_key
        async with self._locks.hold((self.connection.name, self.connection.base_url, key)):
            run_id = await self._find(key) or await self._launch(request)
        return RunRef(
            external_id=run_id,
            url=f"{self.connection.base_url.rstrip('/')}/runs/{run_id}",
            data={"job": request.pipeline},
        )

    async def get_status(self, ref: RunRef) -> RemoteStatus:
        raw = await self._raw_status(ref)
        state = _STATES.get(raw) if isinstance(raw, str) else None
        if state is None:
            return RemoteStatus(RunState.RUNNING, f"unknown Dagster run status {raw!r}")
        return RemoteStatus(state, f"run {raw}")

    async def cancel(self, ref: RunRef) -> None:
        result = await self._call("terminateRun", _TERMINATE_RUN, {"runId": ref.external_id})
        kind = result.get("__typename")
        if kind == "TerminateRunSuccess":
            return
        if kind == "TerminateRunFailure":
            # Dagster refuses to terminate a run that already ended or is already being terminated
            # (neither is an error), and one still starting (retryable).
            raw = await self._raw_status(ref)
            state = _STATES.get(raw) if isinstance(raw, str) else None
            if raw == "CANCELING" or (state is not None and state.terminal):
                return
            if raw in _NOT_YET_TERMINABLE:
                raise OrchestratorUnavailable(
                    f"dagster: terminateRun: run {raw}, not yet terminable: {result.get('message')}"
                )
        raise self._error("terminateRun", result)

    async def _raw_status(self, ref: RunRef) -> object:
        """The run's status as Dagster names it (``STARTED``...)."""
        result = await self._call("runOrError", _RUN_STATUS, {"runId": ref.external_id})
        if result.get("__typename") != "Run":
            raise self._error("runOrError", result)
        return result.get("status")

    async def _find(self, key: str) -> str | None:
        variables = {"filter": {"tags": [{"key": RUN_KEY_TAG, "value": key}]}}
        result = await self._call("runsOrError", _FIND_RUN, variables)
        if result.get("__typename") != "Runs":
            raise self._error("runsOrError", result)
        runs = result.get("results")
        if not isinstance(runs, list):
            raise self.malformed("runsOrError: Runs without results")
        if not runs:
            return None
        return self._run_id(runs[0], "runsOrError")

    async def _launch(self, request: RetrainRequest) -> str:
        options = self.options
        tags = {
            RUN_KEY_TAG: request.idempotency_key,
            "retrigger/product": request.product,
            "retrigger/context": json.dumps(launch_context(request), sort_keys=True),
        }
        run_config: dict[str, Any] = {}
        if options.parameters_as == "run_config":
            run_config = dict(request.parameters)
        else:
            for name, value in request.parameters.items():
                text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
                tags[f"retrigger/param/{name}"] = text
        params = {
            "selector": {
                "repositoryLocationName": options.repository_location_name,
                "repositoryName": options.repository_name,
                "jobName": request.pipeline,
            },
            "runConfigData": run_config,
            "executionMetadata": {"tags": [{"key": k, "value": v} for k, v in tags.items()]},
        }
        result = await self._call("launchRun", _LAUNCH_RUN, {"executionParams": params})
        if result.get("__typename") != "LaunchRunSuccess":
            raise self._error("launchRun", result)
        return self._run_id(result.get("run"), "launchRun")

    async def _call(self, field: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        """POST one GraphQL operation; the typed result under ``data.<field>``."""
        body = {"query": query, "variables": variables}
        answer = self.json_of(await self.request("POST", "/graphql", json_body=body))
        if not isinstance(answer, dict):
            raise self.malformed(f"{field}: a GraphQL answer that is not an object")
        errors = answer.get("errors")
        if errors:
            # Dagster itself answers query errors with 400 (refused: retrying cannot help) and
            # server failures with 500 (retried); GraphQL errors in a 200 come from proxies or
            # gateways in front of it, whose next answer may be fine.
            raise OrchestratorUnavailable(f"dagster: {field}: {_messages(errors)}")
        data = answer.get("data")
        result = data.get(field) if isinstance(data, dict) else None
        if not isinstance(result, dict) or not isinstance(result.get("__typename"), str):
            raise self.malformed(f"{field}: no typed result")
        return result

    def _error(self, field: str, result: Mapping[str, Any]) -> Exception:
        """Dagster's typed error results: PythonError is retryable, the rest are refusals."""
        kind = result.get("__typename")
        message = result.get("message")
        if kind == "RunConfigValidationInvalid":
            message = _messages(result.get("errors"))
        text = f"dagster: {field} answered {kind}" + (f": {message}" if message else "")
        if kind == "PythonError":
            return OrchestratorUnavailable(text)
        return OrchestratorRejected(text)

    def _run_id(self, run: object, field: str) -> str:
        run_id = run.get("runId") if isinstance(run, dict) else None
        if not isinstance(run_id, str) or not run_id:
            raise self.malformed(f"{field}: a run without runId")
        return run_id


def _messages(errors: object) -> str:
    if not isinstance(errors, list):
        return ""
    texts = [str(e.get("message")) for e in errors if isinstance(e, dict) and e.get("message")]
    return "; ".join(texts) or json.dumps(errors)[:300]
