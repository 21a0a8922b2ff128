"""Fixtures of the integration tests: Airflow, Prefect and Dagster started on loopback once for the
package, and a real ``retrigger serve`` whose embedded worker dispatches to them.

A peer's venv comes from ``bash .ci/peers.sh``. Without it the tests skip on a developer machine
and fail under CI (``CI`` set); ``RETRIGGER_INSTALL_PEERS=1`` lets the session install it.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

from retrigger.demo import local_server
from tests.fixtures.server import TOKEN
from tests.integration import peers
from tests.integration.airflow import AirflowPeer, run_airflow
from tests.integration.dagster import DagsterPeer, run_dagster
from tests.integration.prefect import PrefectPeer, run_prefect

_timings: dict[str, float] = {}
T = TypeVar("T")


def require_peer(spec: peers.PeerSpec) -> None:
    """Make sure the peer's venv exists: install it, skip, or fail, as the environment says."""
    if peers.is_installed(spec):
        return
    if os.environ.get("RETRIGGER_INSTALL_PEERS") == "1":
        started = time.monotonic()
        try:
            peers.install(spec, echo=lambda line: print(line, file=sys.stderr))
        except peers.PeerError as exc:
            pytest.fail(str(exc), pytrace=False)
        _timings[f"{spec.name} {spec.version} install"] = time.monotonic() - started
        return
    message = (
        f"{spec.name} {spec.version} is not installed in {peers.venv_dir(spec)}: create it with "
        f"`bash .ci/peers.sh {spec.name}` (or run pytest with RETRIGGER_INSTALL_PEERS=1)"
    )
    if os.environ.get("CI"):
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def _started(
    spec: peers.PeerSpec, run: Callable[[Path], ContextManager[T]], workdir: Path
) -> Iterator[T]:
    """Start a peer once its venv is there, record how long it took, fail with its reason."""
    require_peer(spec)
    started = time.monotonic()
    try:
        with run(workdir) as peer:
            _timings[f"{spec.name} {spec.version} start"] = time.monotonic() - started
            yield peer
    except peers.PeerError as exc:
        pytest.fail(str(exc), pytrace=False)


# Package scope: each peer starts once for tests/integration and stops when its tests are done,
# so an idle scheduler does not slow down the rest of the suite.
@pytest.fixture(scope="package")
def airflow(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AirflowPeer]:
    """Apache Airflow 3 on a free loopback port, DAG ``retrigger_retrain`` parsed and unpaused."""
    yield from _started(peers.AIRFLOW, run_airflow, tmp_path_factory.mktemp("airflow"))


@pytest.fixture(scope="package")
def prefect(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PrefectPeer]:
    """A Prefect 3 server on a free loopback port, deployment ``retrain/retrigger`` served."""
    yield from _started(peers.PREFECT, run_prefect, tmp_path_factory.mktemp("prefect"))


@pytest.fixture(scope="package")
def dagster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterPeer]:
    """Dagster's webserver and daemon on a free loopback port, job ``retrigger_retrain`` loaded."""
    yield from _started(peers.DAGSTER, run_dagster, tmp_path_factory.mktemp("dagster"))


@dataclass(frozen=True)
class Retrigger:
    """A ``retrigger serve`` process: its URL, an org admin key, its log."""

    url: str
    token: str
    log: Path

    def log_files(self) -> list[Path]:
        return [self.log]

    def client(self) -> httpx.AsyncClient:
        """An admin client; the caller closes it."""
        headers = {"Authorization": f"Bearer {self.token}"}
        return httpx.AsyncClient(base_url=self.url, headers=headers, timeout=30)


AIRFLOW_PASSWORD_ENV = "AIRFLOW_PASSWORD"
"""The variable the retrigger process reads the Airflow password from (``env:`` secret_ref)."""


@pytest.fixture
def retrigger(tmp_path: Path, airflow: AirflowPeer) -> Iterator[Retrigger]:
    """``retrigger serve`` on SQLite as it runs in production, only faster: it evaluates a product
    1 s after its last signals arrived (trigger ``ingest``), dispatches every 0.5 s and polls run
    status every 1 s. The periodic scheduler is off: only ingestion makes a decision."""
    env = {
        "RETRIGGER_LOG_LEVEL": "INFO",
        "RETRIGGER_EVALUATION_DEBOUNCE_SECONDS": "1",
        "RETRIGGER_SCHEDULER_INTERVAL_SECONDS": "0",
        "RETRIGGER_DISPATCH_INTERVAL_SECONDS": "0.5",
        "RETRIGGER_STATUS_POLL_INTERVAL_SECONDS": "1",
        # a broken dispatch fails the test in seconds, while a brief Airflow stall is retried
        "RETRIGGER_DISPATCH_MAX_ATTEMPTS": "4",
        "RETRIGGER_DISPATCH_BACKOFF_BASE_SECONDS": "0.5",
        AIRFLOW_PASSWORD_ENV: airflow.password,
    }
    try:
        with local_server(tmp_path, env, token=TOKEN) as server:
            yield Retrigger(url=server.url, token=server.token, log=server.log)
    except RuntimeError as exc:
        pytest.fail(str(exc), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """On a failure, attach the logs of every peer the test used."""
    report = yield
    if report.failed and call.when == "call":
        for name, value in getattr(item, "funcargs", {}).items():
            log_files = getattr(value, "log_files", None)
            if callable(log_files):
                text = "\n".join(peers.tail(path, 40) for path in log_files())
                report.sections.append((f"{name} logs", text))
    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Report how long installing and starting the peers took."""
    if _timings:
        terminalreporter.section("integration peers")
        for what, seconds in _timings.items():
            terminalreporter.write_line(f"{what}: {seconds:.1f} s")
