"""GitHub Actions adapter: a ``workflow_dispatch`` per key, the run found again by its title.

The dispatch API has no idempotency key. The key travels as an input (``key_input``) that the
workflow must put in its ``run-name``; runs are looked up by that title before dispatching. The
dispatch answers the run id when ``return_run_details`` is on (github.com); otherwise the run
shows up asynchronously and the ref stays unresolved (external id = key) until a status poll
finds it and hands the poller the resolved ref (run id and link) to store. Remaining race: a
retry from another process before the run is listed dispatches again; a per-key lock and an
in-process ledger close it within a process, the dispatcher's database claim (one claimer per
run) across processes.
"""

from __future__ import annotations

import json
import re
import time
from collections import OrderedDict
from collections.abc import Collection, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict, Field

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    KeyLocks,
    Orchestrator,
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
    launch_context,
    retry_after_seconds,
)
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable

MAX_INPUTS = 25
"""GitHub refuses a workflow_dispatch with more inputs than this."""
HEADERS = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"}

_QUEUED = frozenset({"queued", "requested", "waiting", "pending"})
_CONCLUSIONS: dict[str, RunState] = {
    "success": RunState.SUCCEEDED,
    "neutral": RunState.SUCCEEDED,
    "failure": RunState.FAILED,
    "timed_out": RunState.FAILED,
    "startup_failure": RunState.FAILED,
    "action_required": RunState.FAILED,
    "stale": RunState.FAILED,
    "cancelled": RunState.CANCELLED,
    "skipped": RunState.CANCELLED,
}


class GitHubActionsOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    repository: str = Field(pattern=r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$")
    """The repository holding the workflow, as ``owner/repo``."""
    ref: str = Field("main", min_length=1)
    """Branch or tag whose workflow file is run."""
    key_input: str = Field("retrigger_run_key", min_length=1)
    """Workflow input carrying the idempotency key; the workflow must declare it and use it in
    ``run-name`` (e.g. ``run-name: retrain ${{ inputs.retrigger_run_key }}``)."""
    context_input: str | None = None
    """Workflow input receiving the launch context as JSON; GitHub rejects undeclared inputs,
    so it is sent only when named here."""
    return_run_details: bool = True
    """Ask the dispatch to answer the run id; GitHub Enterprise Server 3.20 and older reject it."""
    resolve_timeout_seconds: float = Field(900.0, gt=0)
    """How long an unresolved run may stay unlisted before it is reported failed."""


def _mentions(title: object, key: str) -> bool:
    # Whole-token match: "retrigger-run-4" must not match a run titled "... retrigger-run-42".
    pattern = rf"(?<![A-Za-z0-9_-]){re.escape(key)}(?![A-Za-z0-9_-])"
    return isinstance(title, str) and re.search(pattern, title) is not None


class GitHubActionsOrchestrator(Orchestrator):
    kind = "github_actions"
    options_model = GitHubActionsOptions
    auth_types = frozenset({AuthType.GITHUB_TOKEN, AuthType.BEARER})

    _locks: ClassVar[KeyLocks] = KeyLocks()
    _dispatched: ClassVar[OrderedDict[tuple[str, ...], RunRef]] = OrderedDict()
    """This process's dispatches: a repeat before its run is listed must not dispatch again."""
    _ledger_size: ClassVar[int] = 1024

    @property
    def options(self) -> GitHubActionsOptions:
        assert isinstance(self.connection.options, GitHubActionsOptions)
        return self.connection.options

    @property
    def _repo(self) -> str:
        return f"/repos/{self.options.repository}"

    async def submit(self, request: RetrainRequest) -> RunRef:
        workflow, key = request.pipeline, request.idempotency_key
        ledger_key = (self.connection.name, self.connection.base_url, workflow, key)
        async with self._locks.hold(ledger_key):
            run = await self._find(workflow, key)
            if run is not None:
                return self._ref(workflow, key, run)
            if ledger_key in self._dispatched:
                return self._dispatched[ledger_key]
            ref = await self._dispatch(request)
            self._dispatched[ledger_key] = ref
            while len(self._dispatched) > self._ledger_size:
                self._dispatched.popitem(last=False)
            return ref

    async def get_status(self, ref: RunRef) -> RemoteStatus:
        if ref.data.get("resolved", True):
            return _status_of(await self._run(ref.external_id))
        run = await self._resolve(ref)
        if run is not None:
            workflow = str(ref.data["workflow"])
            key = str(ref.data.get("key", ref.external_id))
            return replace(_status_of(run), ref=self._ref(workflow, key, run))
        waited = time.time() - float(ref.data.get("dispatched_at", 0.0))
        if waited > self.options.resolve_timeout_seconds:
            return RemoteStatus(
                RunState.FAILED, f"no workflow run titled with {ref.external_id} appeared"
            )
        return RemoteStatus(RunState.QUEUED, "dispatched; waiting for the run to appear")

    async def cancel(self, ref: RunRef) -> None:
        if ref.data.get("resolved", True):
            run_id = ref.external_id
        else:
            run = await self._resolve(ref)
            if run is None:
                raise OrchestratorUnavailable(
                    f"github_actions: the run for {ref.external_id} is not listed yet"
                )
            run_id = str(run["id"])
        # 409: the run already completed, which is not an error for a cancel.
        await self._call("POST", f"{self._repo}/actions/runs/{quote(run_id)}/cancel", allow=(409,))

    async def _dispatch(self, request: RetrainRequest) -> RunRef:
        workflow, key = request.pipeline, request.idempotency_key
        body: dict[str, Any] = {"ref": self.options.ref, "inputs": self._inputs(request)}
        if self.options.return_run_details:
            body["return_run_details"] = True
        response = await self._call("POST", f"{self._workflow(workflow)}/dispatches", body)
        # Past this point the workflow was dispatched: never raise, or a retry dispatches again.
        details = _json_or_none(response)
        if isinstance(details, dict) and isinstance(details.get("workflow_run_id"), int):
            run_id = str(details["workflow_run_id"])
            data = {"resolved": True, "key": key, "workflow": workflow}
            url = details.get("html_url")
            return RunRef(run_id, url if isinstance(url, str) else None, data)
        try:
            run = await self._find(workflow, key)
        except (OrchestratorRejected, OrchestratorUnavailable):
            run = None
        if run is not None:
            return self._ref(workflow, key, run)
        data = {"resolved": False, "key": key, "workflow": workflow, "dispatched_at": time.time()}
        return RunRef(external_id=key, url=None, data=data)

    def _inputs(self, request: RetrainRequest) -> dict[str, str]:
        inputs = {
            name: value if isinstance(value, str) else json.dumps(value)
            for name, value in request.parameters.items()
        }
        inputs[self.options.key_input] = request.idempotency_key
        if self.options.context_input:
            inputs[self.options.context_input] = json.dumps(launch_context(request), sort_keys=True)
        if len(inputs) > MAX_INPUTS:
            raise OrchestratorRejected(
                f"github_actions: {len(inputs)} workflow inputs, GitHub accepts at most "
                f"{MAX_INPUTS} (the key input included)"
            )
        return inputs

    async def _find(
        self, workflow: str, key: str, since: float | None = None
    ) -> dict[str, Any] | None:
        """The newest workflow_dispatch run whose title names ``key``, or None."""
        params: dict[str, Any] = {"event": "workflow_dispatch", "per_page": 100}
        if since is not None:
            stamp = datetime.fromtimestamp(since, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            params["created"] = f">={stamp}"
        response = await self._call("GET", f"{self._workflow(workflow)}/runs", params=params)
        body = self.json_of(response)
        runs = body.get("workflow_runs") if isinstance(body, dict) else None
        if not isinstance(runs, list):
            raise self.malformed("run list without 'workflow_runs'")
        for run in runs:
            if not isinstance(run, dict):
                raise self.malformed("a workflow run that is not an object")
            if _mentions(run.get("display_title"), key) or _mentions(run.get("name"), key):
                return self._run_of(run)
        return None

    async def _resolve(self, ref: RunRef) -> dict[str, Any] | None:
        workflow = ref.data.get("workflow")
        if not isinstance(workflow, str):
            raise OrchestratorRejected(f"github_actions: ref {ref.external_id} lacks its workflow")
        # Runs created well before the dispatch cannot be ours; the clock skew margin is generous.
        dispatched_at = ref.data.get("dispatched_at")
        since = float(dispatched_at) - 300 if dispatched_at is not None else None
        return await self._find(workflow, str(ref.data.get("key", ref.external_id)), since)

    async def _run(self, run_id: str) -> dict[str, Any]:
        response = await self._call("GET", f"{self._repo}/actions/runs/{quote(run_id)}")
        return self._run_of(self.json_of(response))

    def _workflow(self, workflow: str) -> str:
        if not workflow:
            raise OrchestratorRejected("github_actions: empty workflow (file name or id)")
        return f"{self._repo}/actions/workflows/{quote(workflow, safe='')}"

    def _run_of(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or not isinstance(body.get("id"), int):
            raise self.malformed("a workflow run without an integer 'id'")
        return body

    def _ref(self, workflow: str, key: str, run: Mapping[str, Any]) -> RunRef:
        url = run.get("html_url")
        data = {"resolved": True, "key": key, "workflow": workflow}
        return RunRef(str(run["id"]), url if isinstance(url, str) else None, data)

    async def _call(
        self,
        method: str,
        url: str,
        json_body: Any = None,
        *,
        params: Mapping[str, Any] | None = None,
        allow: Collection[int] = (),
    ) -> httpx.Response:
        """``request`` with GitHub's headers, and rate-limit 403/429 answers made retryable."""
        response = await self.request(
            method,
            url,
            json_body=json_body,
            params=params,
            headers=HEADERS,
            allow=(*allow, 403, 429),
        )
        if response.status_code in (403, 429) and response.status_code not in allow:
            raise _refusal(method, url, response)
        return response


def _refusal(method: str, url: str, response: httpx.Response) -> Exception:
    """A rate limit (retryable, with when to retry) or a real refusal (terminal)."""
    status = response.status_code
    message = f"github_actions: {method} {url} answered {status}: {response.text[:300]}"
    retry_after = retry_after_seconds(response)
    if retry_after is None and response.headers.get("x-ratelimit-remaining") == "0":
        reset = response.headers.get("x-ratelimit-reset", "")
        if reset.isdigit():
            retry_after = max(0.0, int(reset) - time.time())
    if retry_after is None and (status == 429 or "rate limit" in response.text.lower()):
        retry_after = 60.0  # GitHub's advice for a secondary limit without retry-after
    if retry_after is None:
        return OrchestratorRejected(message)
    return OrchestratorUnavailable(message, retry_after=retry_after)


def _json_or_none(response: httpx.Response) -> Any:
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _status_of(run: Mapping[str, Any]) -> RemoteStatus:
    status, conclusion = run.get("status"), run.get("conclusion")
    detail = f"run {run['id']}: {status}" + (f" ({conclusion})" if conclusion else "")
    if status in _QUEUED:
        return RemoteStatus(RunState.QUEUED, detail)
    if status == "completed" and isinstance(conclusion, str) and conclusion in _CONCLUSIONS:
        return RemoteStatus(_CONCLUSIONS[conclusion], detail)
    if status not in ("in_progress", "completed"):
        detail = f"{detail}; unknown GitHub status"
    # in_progress, an unknown status, or a conclusion this adapter does not know yet
    return RemoteStatus(RunState.RUNNING, detail)
