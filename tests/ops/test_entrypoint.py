"""The image's entrypoint (docker/entrypoint.sh) run by /bin/sh against a stand-in ``retrigger``
that records its calls: migrate PostgreSQL before serve/worker, retry, give up, pass through."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

ENTRYPOINT = Path(__file__).resolve().parents[2] / "docker" / "entrypoint.sh"


def fake_retrigger(tmp_path: Path, *, failures: int = 0) -> Path:
    """A ``retrigger`` that logs its arguments; ``db upgrade`` fails ``failures`` times first."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "retrigger"
    script.write_text(
        "#!/bin/sh\n"
        f'echo "$*" >> "{tmp_path}/calls"\n'
        'if [ "$1 $2" = "db upgrade" ]; then\n'
        f'  n=$(cat "{tmp_path}/count" 2>/dev/null || echo 0)\n'
        f'  echo $((n + 1)) > "{tmp_path}/count"\n'
        f'  [ "$n" -ge {failures} ] || exit 1\n'
        "fi\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return bin_dir


def run_entrypoint(
    tmp_path: Path, *args: str, failures: int = 0, **env: str
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    bin_dir = fake_retrigger(tmp_path, failures=failures)
    environment = {
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "MIGRATE_RETRY_SECONDS": "0",
        **env,
    }
    result = subprocess.run(
        ["/bin/sh", str(ENTRYPOINT), *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    calls_file = tmp_path / "calls"
    calls = calls_file.read_text().splitlines() if calls_file.exists() else []
    return result, calls


POSTGRES = "postgresql+asyncpg://retrigger@db/retrigger"


class TestEntrypoint:
    def test_serve_on_postgres_migrates_first(self, tmp_path: Path) -> None:
        result, calls = run_entrypoint(tmp_path, RETRIGGER_DATABASE_URL=POSTGRES)
        assert result.returncode == 0, result.stderr
        assert calls == ["db upgrade", "serve"]

    def test_worker_passes_its_options_through(self, tmp_path: Path) -> None:
        result, calls = run_entrypoint(
            tmp_path, "worker", "--metrics-port", "9464", RETRIGGER_DATABASE_URL=POSTGRES
        )
        assert result.returncode == 0, result.stderr
        assert calls == ["db upgrade", "worker --metrics-port 9464"]

    def test_sqlite_migrates_itself(self, tmp_path: Path) -> None:
        result, calls = run_entrypoint(tmp_path, "serve")
        assert result.returncode == 0, result.stderr
        assert calls == ["serve"]

    def test_migration_can_be_left_to_a_deploy_step(self, tmp_path: Path) -> None:
        result, calls = run_entrypoint(
            tmp_path, "serve", RETRIGGER_DATABASE_URL=POSTGRES, MIGRATE_AT_START="false"
        )
        assert result.returncode == 0, result.stderr
        assert calls == ["serve"]

    def test_a_failed_migration_is_retried(self, tmp_path: Path) -> None:
        result, calls = run_entrypoint(
            tmp_path, "serve", failures=2, RETRIGGER_DATABASE_URL=POSTGRES
        )
        assert result.returncode == 0, result.stderr
        assert calls == ["db upgrade"] * 3 + ["serve"]
        assert "migration attempt 2 failed, retrying" in result.stderr

    def test_gives_up_without_serving(self, tmp_path: Path) -> None:
        result, calls = run_entrypoint(
            tmp_path,
            "serve",
            failures=99,
            RETRIGGER_DATABASE_URL=POSTGRES,
            MIGRATE_ATTEMPTS="3",
        )
        assert result.returncode == 1
        assert calls == ["db upgrade"] * 3
        assert "failed 3 times, giving up" in result.stderr

    def test_other_retrigger_commands_run_without_migrating(self, tmp_path: Path) -> None:
        result, calls = run_entrypoint(
            tmp_path, "keys", "create", "--scope", "ingest", RETRIGGER_DATABASE_URL=POSTGRES
        )
        assert result.returncode == 0, result.stderr
        assert calls == ["keys create --scope ingest"]

    def test_anything_else_runs_as_given(self, tmp_path: Path) -> None:
        result, calls = run_entrypoint(tmp_path, "sh", "-c", "echo from a shell")
        assert result.returncode == 0
        assert result.stdout == "from a shell\n"
        assert calls == []
