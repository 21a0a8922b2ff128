"""Apache Airflow 3 as a test peer: api-server, scheduler and dag-processor on SQLite, with the
simple auth manager and a pre-seeded password, serving the DAGs of ``dags/``.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final
from urllib.parse import quote

import httpx
from pydantic import SecretStr

from retrigger.dispatch.orchestrators.airflow import AirflowOrchestrator
from retrigger.dispatch.orchestrators.base import AuthType, ConnectionConfig
from tests.integration import peers

DAGS: Final = Path(__file__).resolve().parent / "dags"
DAG_ID: Final = "retrigger_retrain"
TASK_ID: Final = "train"
USERNAME: Final = "admin"


@dataclass(frozen=True)
class AirflowPeer:
    """A running Airflow: where it listens, who may log in, and REST reads for assertions."""

    base_url: str
    username: str
    password: str
    home: Path
    logs: tuple[Path, ...] = field(default=())

    def connection(self, name: str = "airflow-it") -> ConnectionConfig:
        """A retrigger connection to this Airflow that logs in through ``/auth/token``."""
        return ConnectionConfig(
            name=name,
            kind="airflow",
            base_url=self.base_url,
            auth=AuthType.AIRFLOW_JWT,
            username=self.username,
            secret=SecretStr(self.password),
            # a single API worker on SQLite can stall for seconds while a task starts
            timeout_seconds=30.0,
            options=AirflowOrchestrator.parse_options({}),
        )

    async def dag_runs(self, dag_id: str = DAG_ID) -> list[dict[str, Any]]:
        """Every run of ``dag_id``, oldest first."""
        body = await self._get(f"/api/v2/dags/{quote(dag_id)}/dagRuns", limit=1000)
        runs: list[dict[str, Any]] = body["dag_runs"]
        assert body["total_entries"] == len(runs), "more runs than one page: raise the limit"
        return runs

    async def dag_run(self, run_id: str, dag_id: str = DAG_ID) -> dict[str, Any]:
        """One DAG run as the REST API shows it."""
        path = f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}"
        run: dict[str, Any] = await self._get(path)
        return run

    async def xcom(self, run_id: str, task_id: str = TASK_ID, dag_id: str = DAG_ID) -> Any:
        """The ``return_value`` XCom a task of the run pushed."""
        path = (
            f"/api/v2/dags/{quote(dag_id)}/dagRuns/{quote(run_id, safe='')}"
            f"/taskInstances/{quote(task_id)}/xcomEntries/return_value"
        )
        return (await self._get(path))["value"]

    def log_files(self) -> list[Path]:
        """The processes' logs and every task log, for failure reports."""
        return [*self.logs, *sorted((self.home / "logs").glob("dag_id=*/**/*.log"))]

    async def _get(self, path: str, **params: Any) -> Any:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10) as http:
            login = {"username": self.username, "password": self.password}
            token = (await http.post("/auth/token", json=login)).raise_for_status().json()
            headers = {"Authorization": f"Bearer {token['access_token']}"}
            response = await http.get(path, params=params, headers=headers)
            return response.raise_for_status().json()


def _settings(home: Path, base_url: str) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # a run of a paused DAG stays queued forever
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{USERNAME}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
        # task runners report to the execution API, which defaults to localhost:8080
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{base_url}/execution/",
        "AIRFLOW__API__BASE_URL": base_url,
        # every component signs or checks JWTs with it: one secret for all three processes
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_urlsafe(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_urlsafe(32),
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "2",
        "AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES": "1",
        "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    }


def _healthy(base_url: str) -> bool | None:
    try:
        health = httpx.get(f"{base_url}/api/v2/monitor/health", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return None
    parts = ("metadatabase", "scheduler", "dag_processor")
    ok = all((health.get(p) or {}).get("status") == "healthy" for p in parts)
    return True if ok else None


def _dag_ready(peer: AirflowPeer) -> bool | None:
    with httpx.Client(base_url=peer.base_url, timeout=5) as http:
        login = {"username": peer.username, "password": peer.password}
        token = http.post("/auth/token", json=login).raise_for_status().json()["access_token"]
        response = http.get(f"/api/v2/dags/{DAG_ID}", headers={"Authorization": f"Bearer {token}"})
    if response.status_code == 404:
        return None
    dag = response.raise_for_status().json()
    return None if dag.get("is_paused") else True


@contextlib.contextmanager
def run_airflow(workdir: Path) -> Iterator[AirflowPeer]:
    """Start Airflow in ``workdir`` on a free port; stop it (and its task runners) on exit."""
    home = workdir / "airflow-home"
    logs = workdir / "logs"
    home.mkdir(parents=True)
    logs.mkdir(exist_ok=True)
    shutil.copy(peers.seed_path(peers.AIRFLOW), home / "airflow.db")
    password = secrets.token_urlsafe(12)
    (home / "passwords.json").write_text(json.dumps({USERNAME: password}))
    port = peers.free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = peers.clean_env(**_settings(home, base_url))
    airflow = str(peers.bin_path(peers.AIRFLOW, "airflow"))
    commands = {
        "airflow-api-server": [airflow, "api-server", "--host", "127.0.0.1", "--port", str(port)],
        "airflow-scheduler": [airflow, "scheduler", "--skip-serve-logs"],
        "airflow-dag-processor": [airflow, "dag-processor"],
    }
    processes: list[peers.Process] = []
    try:
        for name, argv in commands.items():
            processes.append(peers.start(name, argv, env=env, cwd=home, logs=logs))
        peer = AirflowPeer(base_url, USERNAME, password, home, tuple(p.log for p in processes))
        peers.wait_for(
            "Airflow's API server, scheduler and dag processor to report healthy",
            lambda: _healthy(base_url),
            processes=processes,
        )
        peers.wait_for(
            f"DAG {DAG_ID} to be parsed and unpaused",
            lambda: _dag_ready(peer),
            processes=processes,
        )
        yield peer
    finally:
        peers.stop(processes)
