"""Real Prometheus and Alertmanager processes for tests: find the binaries, start, wait, stop."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import httpx
import pytest

T = TypeVar("T")

INSTALL_HINT = "run `bash .ci/monitoring.sh` (Debian packages prometheus, prometheus-alertmanager)"


def require_tool(*names: str) -> str:
    """Path of the first of ``names`` on PATH; skip locally, fail on CI (``CI`` set) if none."""
    for name in names:
        path = shutil.which(name)
        if path is not None:
            return path
    message = f"{' or '.join(names)} not found: {INSTALL_HINT}"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def wait_until(
    probe: Callable[[], T | None],
    *,
    timeout: float,
    what: str,
    diagnostics: Callable[[], str] = lambda: "",
) -> T:
    """Poll ``probe`` until it returns something truthy, at most ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: not within {timeout:.0f}s\n{diagnostics()}")
        time.sleep(0.2)


def answers(url: str) -> bool:
    """Whether ``url`` answers 200 now."""
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.TransportError:
        return False


class Process:
    """A peer process with its output in a log file; ``stop`` is idempotent."""

    def __init__(self, name: str, args: list[str], log: Path) -> None:
        self.name = name
        self.args = args
        self.log = log
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, ready_url: str, *, timeout: float = 30) -> None:
        """Start the process and wait until ``ready_url`` answers 200."""
        with self.log.open("wb") as out:
            self._proc = subprocess.Popen(self.args, stdout=out, stderr=subprocess.STDOUT)
        wait_until(
            lambda: self.alive() and answers(ready_url),
            timeout=timeout,
            what=f"{self.name} ready at {ready_url}",
            diagnostics=self.tail,
        )

    def alive(self) -> bool:
        """True while the process runs; an early exit fails the test with its output."""
        assert self._proc is not None
        code = self._proc.poll()
        if code is not None:
            raise AssertionError(f"{self.name} exited with {code}\n{self.tail()}")
        return True

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then SIGKILL after ``timeout`` seconds; returns the exit code."""
        proc = self._proc
        if proc is None:
            return 0
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        return proc.returncode

    def tail(self, lines: int = 40) -> str:
        """The last lines of the process's output, for failure messages."""
        if not self.log.exists():
            return ""
        text = self.log.read_text(errors="replace").splitlines()[-lines:]
        return f"--- {self.name} log ---\n" + "\n".join(text)
