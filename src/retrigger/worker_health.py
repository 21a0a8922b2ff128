"""``retrigger worker``'s HTTP port: ``/metrics``, and ``/healthz`` that answers 503 once the
worker stops making progress.

prometheus-client's own server runs in a thread and would answer 200 from a wedged process, so
``/healthz`` looks at heartbeats the asyncio side writes instead: a pulse task on the worker's
event loop (``watch_event_loop``), and ``Worker.last_pass_at``, set after each dispatcher pass
(``watch_worker``). The HTTP thread only reads those floats.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import TYPE_CHECKING, Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import REGISTRY, make_wsgi_app

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

    from retrigger.worker import Worker

PULSE_INTERVAL = 1.0
"""Seconds between two beats of the event-loop pulse."""
LOOP_MAX_AGE = 30.0
"""A pulse older than this means the event loop is blocked (or gone)."""


@dataclass(frozen=True)
class Heartbeat:
    """One thing that must keep beating: ``read()`` gives the ``time.monotonic()`` of its last
    beat (None before the first), stale ``max_age`` seconds after it."""

    name: str
    read: Callable[[], float | None]
    max_age: float


class WorkerHealth:
    """The heartbeats of one worker process and the verdict ``/healthz`` serves: healthy when
    every heartbeat has beaten within its ``max_age``. One that has not beaten yet is not healthy
    either: the loops have not started, or the dispatcher's first pass has not ended (so a
    startup probe on ``/healthz`` waits for the worker to actually work)."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._heartbeats: list[Heartbeat] = []
        self._lock = threading.Lock()
        self._pulse_at: float | None = None

    def add(self, heartbeat: Heartbeat) -> None:
        with self._lock:
            self._heartbeats.append(heartbeat)

    def watch_event_loop(self) -> None:
        """Require the pulse (``run_pulse`` on the loop to watch)."""
        self.add(Heartbeat("event_loop", lambda: self._pulse_at, LOOP_MAX_AGE))

    def watch_worker(self, worker: Worker) -> None:
        """Require the worker's dispatcher to finish a pass every few intervals.

        A pass may legitimately take as long as its claims last (``dispatch_lease_seconds``: the
        orchestrator calls of a batch); one still running past that has lost its claims anyway.
        """
        settings = worker.settings
        max_age = settings.dispatch_lease_seconds + 3 * settings.dispatch_interval_seconds
        self.add(Heartbeat("dispatcher", lambda: worker.last_pass_at, max_age))

    async def run_pulse(self, interval: float = PULSE_INTERVAL) -> None:
        """Beat every ``interval`` seconds until cancelled: proof that the event loop turns."""
        while True:
            self._pulse_at = self._clock()
            await asyncio.sleep(interval)

    def check(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, body)``: each heartbeat's age and limit; no heartbeat at all is unhealthy
        (nothing is watched yet)."""
        now = self._clock()
        with self._lock:
            heartbeats = list(self._heartbeats)
        checks: dict[str, Any] = {}
        for heartbeat in heartbeats:
            last = heartbeat.read()
            age = None if last is None else round(now - last, 1)
            checks[heartbeat.name] = {
                "ok": last is not None and now - last <= heartbeat.max_age,
                "age_seconds": age,
                "max_age_seconds": heartbeat.max_age,
            }
        healthy = bool(checks) and all(c["ok"] for c in checks.values())
        return healthy, {"status": "ok" if healthy else "unhealthy", "checks": checks}


def make_app(health: WorkerHealth, metrics: WSGIApplication) -> WSGIApplication:
    """``/healthz`` from ``health``; every other path goes to ``metrics`` (``/metrics``)."""

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/healthz":
            return metrics(environ, start_response)
        healthy, body = health.check()
        payload = json.dumps(body).encode()
        status = "200 OK" if healthy else "503 Service Unavailable"
        headers = [
            ("Content-Type", "application/json"),
            ("Content-Length", str(len(payload))),
            ("Cache-Control", "no-store"),
        ]
        start_response(status, headers)
        return [payload]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Probes every few seconds are not worth a log line each."""


class HealthServer:
    """The HTTP server of ``make_app`` in a daemon thread; ``close`` stops it."""

    def __init__(self, health: WorkerHealth, *, port: int, addr: str) -> None:
        family = socket.getaddrinfo(addr or None, port, type=socket.SOCK_STREAM)[0][0]
        server_class = type("_Server", (_ThreadingServer,), {"address_family": family})
        app = make_app(health, make_wsgi_app(REGISTRY))
        self._server: WSGIServer = make_server(
            addr, port, app, server_class, handler_class=_QuietHandler
        )
        self.port: int = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="retrigger worker http", daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
