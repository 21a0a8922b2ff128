"""A worker killed between the remote launch and recording it: the next worker launches nothing
new. Real ``retrigger worker`` processes on PostgreSQL against a loopback fake Airflow."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import pytest_asyncio
from sqlalchemy import select

from retrigger.db import migrate
from retrigger.db.session import Database
from retrigger.dispatch.models import Run, RunAttempt
from retrigger.main import create_app
from tests.dispatch.conftest import RunsApi, admin_token, live_settings
from tests.fixtures.db import FreshDatabase
from tests.fixtures.orchestrators import FakeAirflow, serve_airflow

pytestmark = pytest.mark.asyncio(loop_scope="session")

WAIT_SECONDS = 60.0
"""Upper bound of every wait; a healthy run needs a few seconds."""
LEASE_SECONDS = 10


@contextmanager
def worker_process(database_url: str, log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``python -m retrigger worker`` with a short tick and lease; stopped (or killed) after.

    The lease bounds each orchestrator call to the lease less a margin (7.5 s here): the test
    kills the first worker well within that, while its call is held.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
    env.update(
        RETRIGGER_DATABASE_URL=database_url,
        RETRIGGER_DISPATCH_INTERVAL_SECONDS="0.2",
        RETRIGGER_DISPATCH_LEASE_SECONDS=str(LEASE_SECONDS),
        RETRIGGER_STATUS_POLL_INTERVAL_SECONDS="3600",
        RETRIGGER_SCHEDULER_INTERVAL_SECONDS="0",
        RETRIGGER_LOG_LEVEL="INFO",
    )
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "retrigger", "worker"],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=log.parent,
        )
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=WAIT_SECONDS)


async def wait_until(
    check: Callable[[], Awaitable[bool]], what: str, proc: subprocess.Popen[bytes], log: Path
) -> None:
    """Poll ``check`` until it holds; fail with the worker's log if it never does or the worker
    exits first."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_SECONDS
    while not await check():
        if proc.poll() is not None or loop.time() > deadline:
            pytest.fail(f"{what} did not happen; worker log:\n{log.read_text()}")
        await asyncio.sleep(0.1)


@dataclass
class Stack:
    """A committed PostgreSQL database, the API over it, and a fake Airflow on loopback."""

    database_url: str
    db: Database
    api: RunsApi
    fake: FakeAirflow
    log: Path

    async def run(self, run_id: int) -> Run:
        async with self.db.session_scope() as session:
            run = await session.get(Run, run_id)
            assert run is not None
            return run

    async def attempts(self, run_id: int) -> Sequence[RunAttempt]:
        async with self.db.session_scope() as session:
            query = select(RunAttempt).where(RunAttempt.run_id == run_id)
            return (await session.execute(query)).scalars().all()


@pytest_asyncio.fixture(loop_scope="session")
async def stack(tmp_path: Path) -> AsyncIterator[Stack]:
    async with FreshDatabase("postgresql", tmp_path) as url:
        settings = live_settings(url)
        db = Database.from_settings(settings)
        try:
            await migrate.upgrade(db.engine)
            token = await admin_token(db)
            transport = httpx.ASGITransport(app=create_app(settings, database=db))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                http.headers["Authorization"] = f"Bearer {token}"
                fake = FakeAirflow()
                with serve_airflow(fake) as airflow_url:
                    api = RunsApi(http)
                    # longer than the lease allows: the workers clamp it to the lease's budget,
                    # which the held call stays within until the kill ends it
                    await api.connection(base_url=airflow_url, timeout_seconds=120)
                    yield Stack(url, db, api, fake, tmp_path / "workers.log")
        finally:
            await db.dispose()


def worker_pid(proc: subprocess.Popen[bytes]) -> str:
    """The lease owner / attempt worker name a worker process uses."""
    return f"{socket.gethostname()[:60]}:{proc.pid}"


async def test_killed_worker_mid_submit_launches_once_after_restart(stack: Stack) -> None:
    await stack.api.product(stale=False)
    r = await stack.api.retrain()
    assert r.status_code == 201, r.text
    run_id = int(r.json()["run_id"])
    key = (await stack.api.get_run(run_id))["idempotency_key"]
    fake, log = stack.fake, stack.log

    fake.hold_next_trigger()
    with worker_process(stack.database_url, log) as first:

        async def launched() -> bool:
            return fake.held.is_set()

        await wait_until(launched, "the first launch", first, log)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=WAIT_SECONDS)
    fake.release.set()
    crashed = await stack.run(run_id)
    # launched remotely, never recorded here; the dead worker's lease still stands
    assert (crashed.state, crashed.attempts, crashed.external_id) == ("pending", 0, None)
    assert crashed.lease_owner == worker_pid(first)
    assert crashed.lease_expires_at is not None
    assert fake.launched == 1

    with worker_process(stack.database_url, log) as second:

        async def submitted() -> bool:
            return (await stack.run(run_id)).state == "submitted"

        await wait_until(submitted, "the re-submission", second, log)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=WAIT_SECONDS) == 0, log.read_text()

    run = await stack.run(run_id)
    assert (run.external_id, run.attempts, run.lease_owner) == (key, 1, None)
    attempts = await stack.attempts(run_id)
    assert [(a.result, a.worker) for a in attempts] == [("submitted", worker_pid(second))]
    assert attempts[0].started_at >= crashed.lease_expires_at  # re-claimed only after expiry
    assert fake.launched == 1
    assert fake.triggers == {key: 2}  # the second trigger was answered 409, then adopted
