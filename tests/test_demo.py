"""``retrigger demo``: a real server on temporary SQLite, decisions printed, a run launched."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import httpx
import pytest

from tests.fixtures.server import LiveServer


def demo(*args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
    return subprocess.run(
        [sys.executable, "-m", "retrigger", "demo", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
class TestDemo:
    def test_own_server_fires_and_launches_a_run(self) -> None:
        out = demo()
        assert out.returncode == 0, out.stdout + out.stderr
        text = out.stdout
        assert "NOT_FIRED" in text  # healthy traffic first
        assert "FIRED" in text.replace("NOT_FIRED", "")
        assert "drift [holds]" in text
        assert "run 1 created with the decision" in text
        for state in ("pending", "submitted", "running", "succeeded"):
            assert f" {state} " in text or f" {state}\n" in text, state
        assert re.search(r"key retrigger-run-1-[0-9a-f]{6}\b", text), text

    def test_against_a_running_server(self, live_server: LiveServer) -> None:
        out = demo("--url", live_server.url, "--token", live_server.token)
        assert out.returncode == 0, out.stdout + out.stderr
        runs = httpx.get(
            live_server.url + "/v1/runs",
            headers={"Authorization": f"Bearer {live_server.token}"},
        ).json()["items"]
        assert [r["state"] for r in runs] == ["succeeded"]
        assert runs[0]["kind"] == "fake"

    def test_url_without_token_is_refused(self) -> None:
        out = demo("--url", "http://127.0.0.1:9")
        assert out.returncode == 2
        assert "--token" in out.stdout
