"""Dagster as a test peer: ``dagster-webserver`` and ``dagster-daemon`` on SQLite, with the run
queue on, loading job ``retrigger_retrain`` of ``repo.py`` as code location ``retrigger_it``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from retrigger.dispatch.orchestrators.base import ConnectionConfig
from retrigger.dispatch.orchestrators.dagster import RUN_KEY_TAG, DagsterOrchestrator
from tests.integration import peers

REPO_FILE: Final = Path(__file__).resolve().parent / "repo.py"
LOCATION: Final = "retrigger_it"
JOB: Final = "retrigger_retrain"
OP: Final = "train"

_RUN = """
query ItRun($runId: ID!) {
  runOrError(runId: $runId) {
    __typename
    ... on Run { runId jobName status runConfig tags { key value } }
  }
}"""
_RUNS = """
query ItRuns($filter: RunsFilter!) {
  runsOrError(filter: $filter) { ... on Runs { results { runId status } } }
}"""
_MESSAGES = """
query ItMessages($runId: ID!) {
  logsForRun(runId: $runId) {
    ... on EventConnection { events { ... on MessageEvent { message stepKey } } }
  }
}"""
_LOCATION = """
query ItLocation {
  workspaceOrError {
    ... on Workspace {
      locationEntries {
        name
        loadStatus
        locationOrLoadError { __typename ... on PythonError { message } }
      }
    }
  }
  instance { daemonHealth { daemonStatus(daemonType: "QUEUED_RUN_COORDINATOR") { healthy } } }
}"""

# The run queue is Dagster's default coordinator: the daemon launches queued runs, checking every
# second here instead of every 5 s.
_INSTANCE_YAML = """\
run_queue:
  dequeue_interval_seconds: 1
telemetry:
  enabled: false
"""


@dataclass(frozen=True)
class DagsterPeer:
    """A running Dagster: its webserver's URL, and GraphQL reads for assertions."""

    base_url: str
    home: Path
    logs: tuple[Path, ...] = field(default=())

    def connection(self, name: str = "dagster-it") -> ConnectionConfig:
        """A retrigger connection to this webserver (no auth, as a local Dagster has)."""
        return ConnectionConfig(
            name=name,
            kind="dagster",
            base_url=self.base_url,
            options=DagsterOrchestrator.parse_options({"repository_location_name": LOCATION}),
        )

    async def graphql(self, query: str, variables: dict[str, Any]) -> httpx.Response:
        """POST one GraphQL operation and return the raw answer, whatever its status."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30) as http:
            return await http.post("/graphql", json={"query": query, "variables": variables})

    async def run(self, run_id: str) -> dict[str, Any]:
        """One run: id, job, status, run config, and its tags as a dict."""
        result = await self._data(_RUN, {"runId": run_id})
        run: dict[str, Any] = result["runOrError"]
        assert run["__typename"] == "Run", run
        run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return run

    async def runs_with_key(self, key: str) -> list[dict[str, Any]]:
        """Every run tagged with retrigger idempotency key ``key``, newest first."""
        variables = {"filter": {"tags": [{"key": RUN_KEY_TAG, "value": key}]}}
        runs: list[dict[str, Any]] = (await self._data(_RUNS, variables))["runsOrError"]["results"]
        return runs

    async def messages(self, run_id: str, step: str = OP) -> list[str]:
        """The log messages a step of the run wrote (``context.log``)."""
        events = (await self._data(_MESSAGES, {"runId": run_id}))["logsForRun"]["events"]
        return [e["message"] for e in events if e.get("stepKey") == step and "message" in e]

    def log_files(self) -> list[Path]:
        """The processes' logs (run workers write to the daemon's), for failure reports."""
        return list(self.logs)

    async def _data(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        body = (await self.graphql(query, variables)).raise_for_status().json()
        assert not body.get("errors"), body
        data: dict[str, Any] = body["data"]
        return data


def _workspace_yaml(home: Path) -> str:
    # the working directory goes on sys.path: never tests/integration, whose package ``dagster``
    # (this one) would shadow the real Dagster
    location = {
        "python_file": {
            "relative_path": str(REPO_FILE),
            "location_name": LOCATION,
            "working_directory": str(home),
        }
    }
    return json.dumps({"load_from": [location]})  # JSON is YAML


def _ready(base_url: str) -> bool | None:
    """True once the code location is loaded and the run queue daemon is alive."""
    try:
        response = httpx.post(f"{base_url}/graphql", json={"query": _LOCATION}, timeout=5)
        data = response.raise_for_status().json()["data"]
    except (httpx.HTTPError, ValueError, KeyError):
        return None
    entries = data["workspaceOrError"].get("locationEntries") or []
    location = next((e for e in entries if e["name"] == LOCATION), None)
    if location is None or location["loadStatus"] != "LOADED":
        return None
    loaded = location["locationOrLoadError"]
    if loaded["__typename"] != "RepositoryLocation":
        raise peers.PeerError(f"code location {LOCATION} failed to load: {loaded.get('message')}")
    return True if data["instance"]["daemonHealth"]["daemonStatus"]["healthy"] else None


@contextlib.contextmanager
def run_dagster(workdir: Path) -> Iterator[DagsterPeer]:
    """Start Dagster's webserver and daemon in ``workdir`` on a free port; stop them on exit."""
    home = workdir / "dagster-home"
    logs = workdir / "logs"
    shutil.copytree(peers.seed_path(peers.DAGSTER), home)
    logs.mkdir(exist_ok=True)
    (home / "dagster.yaml").write_text(_INSTANCE_YAML)
    workspace = home / "workspace.yaml"
    workspace.write_text(_workspace_yaml(home))
    port = peers.free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = peers.clean_env(DAGSTER_HOME=str(home))
    webserver = str(peers.bin_path(peers.DAGSTER, "dagster-webserver"))
    daemon = str(peers.bin_path(peers.DAGSTER, "dagster-daemon"))
    commands = {
        "dagster-webserver": [webserver, "-h", "127.0.0.1", "-p", str(port), "-w", str(workspace)],
        "dagster-daemon": [daemon, "run", "-w", str(workspace)],
    }
    processes: list[peers.Process] = []
    try:
        for name, argv in commands.items():
            processes.append(peers.start(name, argv, env=env, cwd=home, logs=logs))
        peers.wait_for(
            f"code location {LOCATION} to load and the run queue daemon to be healthy",
            lambda: _ready(base_url),
            processes=processes,
        )
        yield DagsterPeer(base_url, home, tuple(p.log for p in processes))
    finally:
        peers.stop(processes)
