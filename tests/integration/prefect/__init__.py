"""Prefect 3 as a test peer: ``prefect server start`` on SQLite, and a process serving the flow
of ``retrain_flow.py`` as deployment ``retrain/retrigger``.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import httpx

from retrigger.dispatch.orchestrators.base import ConnectionConfig
from retrigger.dispatch.orchestrators.prefect import PrefectOrchestrator
from tests.integration import peers

FLOW_SCRIPT: Final = Path(__file__).resolve().parent / "retrain_flow.py"
DEPLOYMENT: Final = "retrain/retrigger"


@dataclass(frozen=True)
class PrefectPeer:
    """A running Prefect server with the flow served, and REST reads for assertions."""

    api_url: str
    deployment_id: str
    home: Path
    logs: tuple[Path, ...] = field(default=())

    def connection(self, name: str = "prefect-it") -> ConnectionConfig:
        """A retrigger connection to this server (no auth, as a local Prefect server has)."""
        return ConnectionConfig(
            name=name,
            kind="prefect",
            base_url=self.api_url,
            options=PrefectOrchestrator.parse_options({}),
        )

    async def flow_runs(self) -> list[dict[str, Any]]:
        """Every flow run of the served deployment."""
        body = {"deployments": {"id": {"any_": [self.deployment_id]}}, "limit": 200}
        runs: list[dict[str, Any]] = await self._call("POST", "/flow_runs/filter", body)
        return runs

    async def flow_run(self, flow_run_id: str) -> dict[str, Any]:
        """One flow run as the REST API shows it."""
        run: dict[str, Any] = await self._call("GET", f"/flow_runs/{flow_run_id}")
        return run

    def log_files(self) -> list[Path]:
        """The server's and the flow server's logs, for failure reports."""
        return list(self.logs)

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.api_url, timeout=10) as http:
            response = await http.request(method, path, json=body)
            return response.raise_for_status().json()


def _deployment_id(api_url: str) -> str | None:
    try:
        response = httpx.get(f"{api_url}/deployments/name/{DEPLOYMENT}", timeout=2)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    deployment_id: str = response.json()["id"]
    return deployment_id


def _healthy(api_url: str) -> bool | None:
    try:
        return True if httpx.get(f"{api_url}/health", timeout=2).status_code == 200 else None
    except httpx.HTTPError:
        return None


@contextlib.contextmanager
def run_prefect(workdir: Path) -> Iterator[PrefectPeer]:
    """Start a Prefect server and the flow server in ``workdir``; stop both on exit."""
    home = workdir / "prefect-home"
    logs = workdir / "logs"
    home.mkdir(parents=True)
    logs.mkdir(exist_ok=True)
    shutil.copy(peers.seed_path(peers.PREFECT), home / "prefect.db")
    port = peers.free_port()
    api_url = f"http://127.0.0.1:{port}/api"
    env = peers.clean_env(
        PREFECT_HOME=str(home),
        PREFECT_API_URL=api_url,
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_UI_ENABLED="false",
        # the runner looks for runs to start this often (default 10 s)
        PREFECT_RUNNER_POLL_FREQUENCY="1",
        DO_NOT_TRACK="1",
        # it answers 503 on SQLite lock timeouts; the log then says which statement waited
        PREFECT_API_LOG_RETRYABLE_ERRORS="true",
    )
    prefect = str(peers.bin_path(peers.PREFECT, "prefect"))
    python = str(peers.bin_path(peers.PREFECT, "python"))
    server = ["server", "start", "--host", "127.0.0.1", "--port", str(port)]
    processes: list[peers.Process] = []
    try:
        processes.append(
            peers.start("prefect-server", [prefect, *server], env=env, cwd=home, logs=logs)
        )
        peers.wait_for(
            "the Prefect server to answer /api/health",
            lambda: _healthy(api_url),
            processes=processes,
        )
        processes.append(
            peers.start("prefect-flow", [python, str(FLOW_SCRIPT)], env=env, cwd=home, logs=logs)
        )
        deployment_id = peers.wait_for(
            f"deployment {DEPLOYMENT} to be served",
            lambda: _deployment_id(api_url),
            processes=processes,
        )
        yield PrefectPeer(api_url, deployment_id, home, tuple(p.log for p in processes))
    finally:
        peers.stop(processes)
