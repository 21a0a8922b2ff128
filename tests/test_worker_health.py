"""The worker's ``/healthz``: healthy only while its heartbeats are fresh; served with ``/metrics``
on ``retrigger worker --metrics-port``."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any
from wsgiref.util import setup_testing_defaults

import httpx
import pytest

from retrigger.config import Settings
from retrigger.db.session import Database
from retrigger.demo import free_port
from retrigger.worker import Worker
from retrigger.worker_health import (
    LOOP_MAX_AGE,
    HealthServer,
    Heartbeat,
    WorkerHealth,
    make_app,
)

DEADLINE = 60.0
"""Seconds to wait for a process or loop to come up on a loaded 2-core machine."""


class Clock:
    """A settable monotonic clock."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Beat:
    """A heartbeat source the test moves by hand."""

    def __init__(self) -> None:
        self.at: float | None = None

    def __call__(self) -> float | None:
        return self.at


class TestCheck:
    def test_nothing_watched_is_unhealthy(self) -> None:
        healthy, body = WorkerHealth().check()
        assert (healthy, body) == (False, {"status": "unhealthy", "checks": {}})

    def test_a_heartbeat_that_never_beat_is_unhealthy(self) -> None:
        health = WorkerHealth(clock=Clock())
        health.add(Heartbeat("dispatcher", Beat(), max_age=10))
        healthy, body = health.check()
        assert not healthy
        assert body["checks"]["dispatcher"] == {
            "ok": False,
            "age_seconds": None,
            "max_age_seconds": 10,
        }

    def test_fresh_then_stale_then_fresh_again(self) -> None:
        clock, beat = Clock(), Beat()
        health = WorkerHealth(clock=clock)
        health.add(Heartbeat("dispatcher", beat, max_age=10))
        beat.at = clock.now
        clock.now += 10  # at the limit: still healthy
        assert health.check() == (
            True,
            {
                "status": "ok",
                "checks": {"dispatcher": {"ok": True, "age_seconds": 10, "max_age_seconds": 10}},
            },
        )
        clock.now += 0.5
        healthy, body = health.check()
        assert not healthy
        assert body["status"] == "unhealthy"
        assert body["checks"]["dispatcher"]["age_seconds"] == 10.5
        beat.at = clock.now
        assert health.check()[0]

    def test_one_stale_heartbeat_of_two_is_enough(self) -> None:
        clock, fresh, stale = Clock(), Beat(), Beat()
        health = WorkerHealth(clock=clock)
        health.add(Heartbeat("event_loop", fresh, max_age=30))
        health.add(Heartbeat("dispatcher", stale, max_age=5))
        stale.at = clock.now - 6
        fresh.at = clock.now
        healthy, body = health.check()
        assert not healthy
        assert {n: c["ok"] for n, c in body["checks"].items()} == {
            "event_loop": True,
            "dispatcher": False,
        }


class TestPulse:
    @pytest.mark.asyncio(loop_scope="session")
    async def test_pulse_beats_while_the_loop_turns(self) -> None:
        clock = Clock()
        health = WorkerHealth(clock=clock)
        health.watch_event_loop()
        assert not health.check()[0]
        task = asyncio.create_task(health.run_pulse(interval=0.01))
        try:
            await _until(lambda: health.check()[0], "the first pulse")
            # the loop stops turning (as a blocking call would make it): the pulse goes stale
            task.cancel()
            clock.now += LOOP_MAX_AGE + 1
            healthy, body = health.check()
            assert not healthy
            assert body["checks"]["event_loop"]["ok"] is False
        finally:
            task.cancel()


class TestWatchWorker:
    @pytest.mark.asyncio(loop_scope="session")
    async def test_healthy_after_a_dispatcher_pass_stale_once_it_stops(
        self, database: Database, test_settings: Settings
    ) -> None:
        settings = test_settings.model_copy(
            update={"dispatch_interval_seconds": 0.05, "scheduler_interval_seconds": 0}
        )
        clock = Clock(time.monotonic())
        health = WorkerHealth(clock=lambda: clock.now)
        worker = Worker(Database(database.engine, settings), settings)
        health.watch_worker(worker)
        max_age = settings.dispatch_lease_seconds + 3 * 0.05
        assert health.check()[0] is False  # not started: no pass yet
        worker.start()
        try:
            await _until(lambda: worker.last_pass_at is not None, "a dispatcher pass")
        finally:
            await worker.stop()
        assert worker.last_pass_at is not None
        clock.now = worker.last_pass_at + 1
        healthy, body = health.check()
        assert healthy, body
        assert body["checks"]["dispatcher"]["max_age_seconds"] == pytest.approx(max_age)
        # the worker is stopped: its heartbeat ages past the limit
        clock.now = worker.last_pass_at + max_age + 1
        healthy, body = health.check()
        assert not healthy
        assert body["checks"]["dispatcher"]["ok"] is False


def _call(app: Any, path: str) -> tuple[str, dict[str, str], bytes]:
    environ: dict[str, Any] = {"PATH_INFO": path}
    setup_testing_defaults(environ)
    started: dict[str, Any] = {}

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        started.update(status=status, headers=dict(headers))
        return lambda _: None

    body: Iterable[bytes] = app(environ, start_response)
    return started["status"], started["headers"], b"".join(body)


class TestApp:
    def test_healthz_answers_the_verdict_as_json(self) -> None:
        clock, beat = Clock(), Beat()
        health = WorkerHealth(clock=clock)
        health.add(Heartbeat("dispatcher", beat, max_age=10))
        metrics_calls: list[str] = []

        def metrics(environ: Any, start_response: Any) -> list[bytes]:
            metrics_calls.append(environ["PATH_INFO"])
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"retrigger_x 1\n"]

        app = make_app(health, metrics)
        status, headers, body = _call(app, "/healthz")
        assert status.startswith("503")
        assert headers["Content-Type"] == "application/json"
        assert json.loads(body)["checks"]["dispatcher"]["ok"] is False
        beat.at = clock.now
        status, _, body = _call(app, "/healthz")
        assert status == "200 OK"
        assert json.loads(body)["status"] == "ok"
        assert metrics_calls == []
        assert _call(app, "/metrics") == (
            "200 OK",
            {"Content-Type": "text/plain"},
            b"retrigger_x 1\n",
        )
        assert metrics_calls == ["/metrics"]

    def test_server_serves_healthz_and_metrics_on_loopback(self) -> None:
        beat = Beat()
        health = WorkerHealth()
        health.add(Heartbeat("dispatcher", beat, max_age=60))
        server = HealthServer(health, port=0, addr="127.0.0.1")
        try:
            base = f"http://127.0.0.1:{server.port}"
            assert httpx.get(f"{base}/healthz", timeout=10).status_code == 503
            beat.at = time.monotonic()
            assert httpx.get(f"{base}/healthz", timeout=10).status_code == 200
            metrics = httpx.get(f"{base}/metrics", timeout=10)
            assert metrics.status_code == 200
            assert "retrigger_" in metrics.text
        finally:
            server.close()


@pytest.fixture
def worker_process(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[bytes], str, Path]]:
    """``retrigger worker --metrics-port`` on a fresh SQLite file; stopped afterwards."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
    env.update(
        RETRIGGER_DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'w.db'}",
        RETRIGGER_DISPATCH_INTERVAL_SECONDS="0.2",
        RETRIGGER_SCHEDULER_INTERVAL_SECONDS="0",
    )
    log = tmp_path / "worker.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "retrigger", "worker", "--metrics-port", str(port)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=tmp_path,
        )
    try:
        yield proc, f"http://127.0.0.1:{port}", log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class TestWorkerCommand:
    def test_healthz_turns_healthy_when_the_loops_run(
        self, worker_process: tuple[subprocess.Popen[bytes], str, Path]
    ) -> None:
        proc, base, log = worker_process
        deadline = time.monotonic() + DEADLINE
        body: dict[str, Any] = {}
        while True:
            assert proc.poll() is None, log.read_text()
            try:
                response = httpx.get(f"{base}/healthz", timeout=5)
            except httpx.TransportError:
                response = None
            if response is not None:
                body = response.json()
                if response.status_code == 200:
                    break
                assert response.status_code == 503, response.text
            assert time.monotonic() < deadline, f"/healthz still {body}\n{log.read_text()}"
            time.sleep(0.2)
        assert body["status"] == "ok"
        assert body["checks"]["event_loop"]["ok"] is True
        metrics = httpx.get(f"{base}/metrics", timeout=5)
        assert metrics.status_code == 200
        assert "retrigger_" in metrics.text
        proc.terminate()
        assert proc.wait(timeout=30) == 0, log.read_text()


async def _until(condition: Any, what: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + DEADLINE
    while not condition():
        assert loop.time() < deadline, f"no {what} within {DEADLINE:.0f} s"
        await asyncio.sleep(0.01)
