"""A fake Airflow REST API (v2 of Airflow 3, v1 of Airflow 2) holding DAGs and DAG runs."""

from __future__ import annotations

import base64
import itertools
import json
import re
import uuid
from typing import Any

import httpx

from retrigger.dispatch.orchestrators.airflow import AirflowOptions
from retrigger.dispatch.orchestrators.base import AuthType, RunState
from tests.dispatch.orchestrators.servers import RecordingServer

BASE_URL = "http://airflow.test:8080"
USERNAME, PASSWORD = "retrigger", "s3cret"
DAG_ID = "train_fraud_scorer"

_RUN = re.compile(r"^/api/(v1|v2)/dags/([^/]+)/dagRuns(?:/([^/]+))?(/setNote)?$")
_DAG = re.compile(r"^/api/(v1|v2)/dags/([^/]+)$")
_PATCH_STATES = {"queued", "success", "failed"}


def problem(status: int, detail: str) -> httpx.Response:
    return httpx.Response(status, json={"detail": detail})


class AirflowServer(RecordingServer):
    """DAG runs keyed by (dag_id, dag_run_id); a run stays queued until told otherwise."""

    kind = "airflow"
    pipeline = DAG_ID

    def __init__(
        self,
        *,
        api_version: str = "v2",
        auth: AuthType = AuthType.AIRFLOW_JWT,
        unpause: bool = False,
        paused: bool = False,
    ) -> None:
        self.api_version = api_version
        self.auth = auth
        super().__init__(
            BASE_URL,
            AirflowOptions(api_version=api_version, unpause=unpause),  # type: ignore[arg-type]
            auth=auth,
            username=USERNAME if auth in (AuthType.BASIC, AuthType.AIRFLOW_JWT) else None,
            secret=PASSWORD if auth is not AuthType.NONE else None,
        )
        self.dags: dict[str, dict[str, Any]] = {DAG_ID: {"dag_id": DAG_ID, "is_paused": paused}}
        self.runs: dict[tuple[str, str], dict[str, Any]] = {}
        self.tokens: set[str] = set()
        self.logins = 0
        self.accept_tokens = True
        self.launched = 0
        self._token_ids = itertools.count(1)

    # -- Server protocol ------------------------------------------------------------------------
    def finish(self, external_id: str, state: RunState) -> None:
        target = {RunState.SUCCEEDED: "success", RunState.FAILED: "failed"}[state]
        self.set_state(external_id, target)

    def set_state(self, external_id: str, state: str | None, *, note: str | None = None) -> None:
        """Put a run in any raw Airflow state (tests of the state mapping)."""
        run = self.runs[(DAG_ID, external_id)]
        run["state"], run["note"] = state, note

    def expire_tokens(self) -> None:
        """Forget every issued JWT, as a restart or an expiry would."""
        self.tokens.clear()

    # -- HTTP -----------------------------------------------------------------------------------
    def serve(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/auth/token" and request.method == "POST":
            return self._login(request)
        if not self._authorized(request):
            return problem(401, "Not authenticated")
        prefix = f"/api/{self.api_version}/"
        if not path.startswith(prefix):
            return problem(404, "Not Found")
        if match := _RUN.match(path):
            _, dag_id, run_id, set_note = match.groups()
            if dag_id not in self.dags:
                return problem(404, f"The Dag with ID: `{dag_id}` was not found")
            if run_id is None:
                if request.method == "POST":
                    return self._trigger(dag_id, json.loads(request.content))
                return problem(405, "Method Not Allowed")
            return self._run(request, dag_id, run_id, set_note=bool(set_note))
        if (match := _DAG.match(path)) and request.method == "PATCH":
            dag = self.dags.get(match.group(2))
            if dag is None:
                return problem(404, "Dag not found")
            dag["is_paused"] = bool(json.loads(request.content)["is_paused"])
            return httpx.Response(200, json=dag)
        return problem(404, "Not Found")

    def _login(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        if body != {"username": USERNAME, "password": PASSWORD}:
            return problem(401, "Invalid username or password")
        token = f"jwt-{next(self._token_ids)}"
        self.tokens.add(token)
        self.logins += 1
        return httpx.Response(201, json={"access_token": token})

    def _authorized(self, request: httpx.Request) -> bool:
        header: str = request.headers.get("authorization", "")
        if self.auth is AuthType.NONE:
            return True
        if self.auth is AuthType.BASIC:
            expected = base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
            return header == f"Basic {expected}"
        if self.auth is AuthType.BEARER:
            return header == f"Bearer {PASSWORD}"
        return self.accept_tokens and header.removeprefix("Bearer ") in self.tokens

    def _trigger(self, dag_id: str, body: dict[str, Any]) -> httpx.Response:
        if self.api_version == "v2" and "logical_date" not in body:
            detail = [{"type": "missing", "loc": ["body", "logical_date"], "msg": "Field required"}]
            return httpx.Response(422, json={"detail": detail})
        run_id = body.get("dag_run_id") or f"manual__{uuid.uuid4().hex}"
        if (dag_id, run_id) in self.runs:
            return problem(409, f"DAGRun with dag_id: '{dag_id}' and run_id: '{run_id}' exists")
        run = {
            "dag_run_id": run_id,
            "dag_id": dag_id,
            "logical_date": body.get("logical_date"),
            "run_type": "manual",
            "state": "queued",
            "conf": body.get("conf") or {},
            "note": None,
        }
        self.runs[(dag_id, run_id)] = run
        self.launched += 1
        return httpx.Response(200, json=run)

    def _run(
        self, request: httpx.Request, dag_id: str, run_id: str, *, set_note: bool
    ) -> httpx.Response:
        run = self.runs.get((dag_id, run_id))
        if run is None:
            return problem(
                404, f"The DagRun with dag_id: `{dag_id}` and run_id: `{run_id}` was not found"
            )
        if request.method == "GET" and not set_note:
            return httpx.Response(200, json=run)
        if request.method != "PATCH":
            return problem(405, "Method Not Allowed")
        body = json.loads(request.content)
        if set_note:
            run["note"] = body["note"]
            return httpx.Response(200, json=run)
        if "state" in body and body["state"] not in _PATCH_STATES:
            return problem(400, f"Invalid state {body['state']!r}")
        if self.api_version == "v1" and set(body) - {"state"}:
            return problem(400, "Property is read-only")
        run["state"] = body.get("state", run["state"])
        if "note" in body:
            run["note"] = body["note"]
        return httpx.Response(200, json=run)


def make_server() -> AirflowServer:
    return AirflowServer()
