"""The CLI: fast help, database commands, key management against a real SQLite file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def run(args: list[str], db: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
    if db is not None:
        env["RETRIGGER_DATABASE_URL"] = f"sqlite+aiosqlite:///{db}"
    return subprocess.run(
        [sys.executable, "-m", "retrigger", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


class TestHelp:
    def test_help_imports_no_heavy_stack(self) -> None:
        code = (
            "import sys, retrigger.cli as c\n"
            "heavy = [m for m in ('sqlalchemy', 'fastapi', 'scipy', 'numpy', 'pydantic')"
            " if m in sys.modules]\n"
            "print(','.join(heavy))\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        )
        assert out.stdout.strip() == ""

    def test_help_lists_commands(self) -> None:
        out = run(["--help"])
        assert out.returncode == 0
        for command in ("serve", "db", "keys", "version"):
            assert command in out.stdout


class TestDatabaseAndKeys:
    def test_upgrade_current_and_keys(self, tmp_path: Path) -> None:
        db = tmp_path / "cli.db"
        assert run(["db", "current"], db).returncode == 1  # empty database: behind
        up = run(["db", "upgrade"], db)
        assert up.returncode == 0, up.stderr
        current = run(["db", "current"], db)
        assert current.returncode == 0
        assert "at head" in current.stdout

        created = run(["keys", "create", "--scope", "read", "--name", "dash"], db)
        assert created.returncode == 0, created.stderr
        token = created.stdout.strip().splitlines()[-1]
        assert token.startswith("rtk_")
        key_id = token.split("_")[1]

        listed = run(["keys", "list"], db)
        assert key_id in listed.stdout
        assert token not in listed.stdout

        assert run(["keys", "revoke", key_id], db).returncode == 0
        assert key_id not in run(["keys", "list"], db).stdout
        assert "revoked" in run(["keys", "list", "--include-revoked"], db).stdout

    def test_unknown_team_is_an_error(self, tmp_path: Path) -> None:
        db = tmp_path / "cli.db"
        run(["db", "upgrade"], db)
        out = run(["keys", "create", "--scope", "ingest", "--team", "nope"], db)
        assert out.returncode == 1
        assert "not found" in out.stderr

    @pytest.mark.parametrize("scope", ["root", ""])
    def test_bad_scope_is_an_error(self, tmp_path: Path, scope: str) -> None:
        db = tmp_path / "cli.db"
        run(["db", "upgrade"], db)
        assert run(["keys", "create", "--scope", scope], db).returncode == 2

    def test_version(self) -> None:
        out = run(["version"])
        assert out.returncode == 0
        assert out.stdout.startswith("retrigger ")


class TestServeOnPostgres:
    @pytest.mark.asyncio(loop_scope="session")
    async def test_refuses_to_start_behind_head_and_names_the_command(self, tmp_path: Path) -> None:
        from tests.fixtures.db import FreshDatabase

        async with FreshDatabase("postgresql", tmp_path) as url:
            env = {k: v for k, v in os.environ.items() if not k.startswith("RETRIGGER_")}
            env["RETRIGGER_DATABASE_URL"] = url
            out = subprocess.run(
                [sys.executable, "-m", "retrigger", "serve", "--port", "1"],
                capture_output=True,
                text=True,
                env=env,
                timeout=60,
                check=False,
            )
        assert out.returncode == 3
        assert "retrigger db upgrade" in out.stderr
