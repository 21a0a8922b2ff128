"""``retrigger signals cleanup`` against a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def test_cli_cleanup(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
    env["RETRIGGER_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path / 'cli.db'}"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "retrigger", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )

    assert run("db", "upgrade").returncode == 0
    out = run("signals", "cleanup")
    assert out.returncode == 0, out.stderr
    assert "metrics\t0" in out.stdout
    assert "idempotency_keys\t0" in out.stdout
