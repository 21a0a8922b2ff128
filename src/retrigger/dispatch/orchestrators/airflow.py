"""Airflow adapter: one DAG run per retrain request over the stable REST API (v2 of Airflow 3,
v1 of Airflow 2). The idempotency key is the ``dag_run_id``, so a repeat answers 409 and the
adapter returns the run that exists; Airflow 3 logins go through ``POST /auth/token``.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncGenerator, Generator, Mapping
from typing import Any, ClassVar, Literal
from urllib.parse import quote

import httpx
from pydantic import BaseModel, ConfigDict

from retrigger.dispatch.orchestrators.base import (
    AuthType,
    ConnectionConfig,
    Orchestrator,
    RemoteStatus,
    RetrainRequest,
    RunRef,
    RunState,
    launch_context,
    retry_after_seconds,
)
from retrigger.errors import OrchestratorRejected, OrchestratorUnavailable

_STATES: Mapping[str, RunState] = {
    "queued": RunState.QUEUED,
    "running": RunState.RUNNING,
    "success": RunState.SUCCEEDED,
    "failed": RunState.FAILED,
}
_FINISHED = frozenset({"success", "failed"})
CANCEL_NOTE = "Stopped by retrigger"
"""Note put on a run the adapter stopped: Airflow has no cancelled state, only ``failed``."""


class AirflowOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    api_version: Literal["v1", "v2"] = "v2"
    """``v2`` for Airflow 3 (``/api/v2``), ``v1`` for Airflow 2 (``/api/v1``)."""
    unpause: bool = False
    """Unpause the DAG before triggering; a paused DAG's run otherwise stays queued forever."""


class AirflowJWTAuth(httpx.Auth):
    """Airflow 3 login: exchange username and password for a JWT at ``/auth/token``.

    The token is cached for the client's lifetime and fetched again once when a request answers
    401 (expired). Login failures become retrigger errors here, since no adapter code sees them.
    """

    requires_response_body = True
    _tokens: ClassVar[dict[tuple[str, str, str], str]] = {}
    """Tokens of this process by (token URL, username, password digest): a dispatcher or poller
    makes a new client per call, and logging in each time would double every request."""

    def __init__(self, token_url: str, username: str, password: str) -> None:
        self._token_url = token_url
        self._credentials = {"username": username, "password": password}
        digest = hashlib.sha256(password.encode()).hexdigest()
        self._cache_key = (token_url, username, digest)

    @property
    def _token(self) -> str | None:
        return self._tokens.get(self._cache_key)

    @_token.setter
    def _token(self, value: str) -> None:
        self._tokens[self._cache_key] = value

    def sync_auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response]:
        raise RuntimeError("AirflowJWTAuth works with httpx.AsyncClient only")

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        fetched = False
        if self._token is None:
            login = yield self._login_request()
            # a custom async flow gets the login answer unread (a real server streams it)
            await login.aread()
            self._token = self._token_of(login)
            fetched = True
        request.headers["Authorization"] = f"Bearer {self._token}"
        response = yield request
        if response.status_code != 401 or fetched:
            return
        login = yield self._login_request()
        await login.aread()
        self._token = self._token_of(login)
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

    def _login_request(self) -> httpx.Request:
        return httpx.Request("POST", self._token_url, json=self._credentials)

    def _token_of(self, response: httpx.Response) -> str:
        status = response.status_code
        where = f"airflow: POST {httpx.URL(self._token_url).path}"
        if status >= 500 or status in (408, 425, 429):
            raise OrchestratorUnavailable(
                f"{where} answered {status}", retry_after=retry_after_seconds(response)
            )
        if status >= 400:
            raise OrchestratorRejected(f"{where} answered {status}: login refused")
        try:
            token = response.json().get("access_token")
        except (ValueError, AttributeError) as exc:
            raise OrchestratorUnavailable(f"{where}: malformed answer") from exc
        if not isinstance(token, str) or not token:
            raise OrchestratorUnavailable(f"{where}: answer has no access_token")
        return token


class AirflowOrchestrator(Orchestrator):
    """Triggers a DAG (``pipeline`` = ``dag_id``) with the parameters and context as ``conf``.

    ``conf`` is the rendered parameters plus the retrigger context under the ``retrigger`` key.
    Cancel PATCHes the run to ``failed`` (Airflow's documented way to stop one) with
    :data:`CANCEL_NOTE` as its note, which ``get_status`` reports as cancelled. A run that ends
    between the adapter's read and its PATCH is marked failed anyway: Airflow offers no
    conditional update.
    """

    kind = "airflow"
    options_model = AirflowOptions
    auth_types: ClassVar[frozenset[AuthType]] = frozenset(
        {AuthType.NONE, AuthType.BASIC, AuthType.BEARER, AuthType.AIRFLOW_JWT}
    )

    @classmethod
    def http_auth(cls, connection: ConnectionConfig) -> httpx.Auth | None:
        """Basic (Airflow 2), bearer, or a JWT login against ``/auth/token`` (Airflow 3)."""
        if connection.auth is AuthType.AIRFLOW_JWT:
            password = connection.secret.get_secret_value() if connection.secret else ""
            token_url = f"{connection.base_url.rstrip('/')}/auth/token"
            return AirflowJWTAuth(token_url, connection.username or "", password)
        return super().http_auth(connection)

    @property
    def options(self) -> AirflowOptions:
        assert isinstance(self.connection.options, AirflowOptions)
        return self.connection.options

    async def submit(self, request: RetrainRequest) -> RunRef:
        dag_id, key = request.pipeline, request.idempotency_key
        dag_path = self._dag_path(dag_id)
        if self.options.unpause:
            await self.request(
                "PATCH",
                dag_path,
                params={"update_mask": "is_paused"},
                json_body={"is_paused": False},
            )
        body: dict[str, Any] = {
            "dag_run_id": key,
            "conf": {**request.parameters, "retrigger": launch_context(request)},
        }
        if self.options.api_version == "v2":
            # Airflow 3 requires the field; null lets the run start now, outside any schedule.
            body["logical_date"] = None
        response = await self.request("POST", f"{dag_path}/dagRuns", json_body=body, allow=(409,))
        if response.status_code == 409:
            response = await self.request("GET", self._run_path(dag_id, key))
        run = self._run_of(response)
        return RunRef(
            external_id=run["dag_run_id"],
            url=self._run_url(dag_id, run["dag_run_id"]),
            data={"dag_id": dag_id},
        )

    async def get_status(self, ref: RunRef) -> RemoteStatus:
        run = self._run_of(await self.request("GET", self._run_path(self._dag_of(ref), ref)))
        raw, note = run.get("state"), run.get("note")
        if raw == "failed" and isinstance(note, str) and note.startswith(CANCEL_NOTE):
            return RemoteStatus(RunState.CANCELLED, f"dag run failed: {note}")
        state = _STATES.get(raw) if isinstance(raw, str) else None
        if state is None:
            return RemoteStatus(RunState.RUNNING, f"unknown Airflow dag run state {raw!r}")
        return RemoteStatus(state, f"dag run {raw}")

    async def cancel(self, ref: RunRef) -> None:
        run_path = self._run_path(self._dag_of(ref), ref)
        run = self._run_of(await self.request("GET", run_path))
        if run.get("state") in _FINISHED:
            return
        if self.options.api_version == "v2":
            await self.request(
                "PATCH", run_path, json_body={"state": "failed", "note": CANCEL_NOTE}
            )
            return
        await self.request("PATCH", run_path, json_body={"state": "failed"})
        # Airflow 2 sets notes on their own endpoint (2.5+); older ones lack it: 404 is fine.
        await self.request(
            "PATCH", f"{run_path}/setNote", json_body={"note": CANCEL_NOTE}, allow=(404,)
        )

    def _dag_path(self, dag_id: str) -> str:
        return f"/api/{self.options.api_version}/dags/{quote(dag_id, safe='')}"

    def _run_path(self, dag_id: str, run: RunRef | str) -> str:
        run_id = run.external_id if isinstance(run, RunRef) else run
        return f"{self._dag_path(dag_id)}/dagRuns/{quote(run_id, safe='')}"

    def _run_url(self, dag_id: str, run_id: str) -> str:
        base = self.connection.base_url.rstrip("/")
        dag, run = quote(dag_id, safe=""), quote(run_id, safe="")
        if self.options.api_version == "v1":
            return f"{base}/dags/{dag}/grid?dag_run_id={run}"
        return f"{base}/dags/{dag}/runs/{run}"

    @staticmethod
    def _dag_of(ref: RunRef) -> str:
        dag_id = ref.data.get("dag_id")
        if not isinstance(dag_id, str) or not dag_id:
            raise OrchestratorRejected(f"airflow: run {ref.external_id!r} has no dag_id in its ref")
        return dag_id

    def _run_of(self, response: httpx.Response) -> dict[str, Any]:
        run = self.json_of(response)
        if not isinstance(run, dict) or not isinstance(run.get("dag_run_id"), str):
            raise self.malformed("a DAG run without dag_run_id")
        return run
