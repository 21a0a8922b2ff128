"""The integration tests' peers: pinned Airflow, Prefect and Dagster in cached virtual
environments, and helpers that run their processes on loopback and stop them cleanly.

Standard library only, so ``.ci/peers.sh`` can run it before anything else is installed:
``python -m tests.integration.peers install [--prune] [airflow|prefect|dagster ...]``.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Final, TypeVar

T = TypeVar("T")

MARKER: Final = "retrigger-peer.json"
"""Written last in a peer's venv: its absence means the install is missing or unfinished."""


@dataclass(frozen=True)
class PeerSpec:
    """One peer: the pinned package, and how to prepare its empty database once per install."""

    name: str
    distribution: str
    module: str
    version: str
    seed_file: str
    """The migrated, empty database kept in ``<venv>/seed/``; tests start from a copy of it."""
    seed_command: tuple[str, ...]
    seed_env: Callable[[Path, Path], dict[str, str]]
    """Environment of the seed command, from (scratch home, seed database path)."""

    @property
    def requirement(self) -> str:
        return f"{self.distribution}=={self.version}"


def _airflow_seed_env(home: Path, database: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{database}",
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def _prefect_seed_env(home: Path, database: Path) -> dict[str, str]:
    return {
        "PREFECT_HOME": str(home),
        "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    }


def _dagster_seed_env(home: Path, database: Path) -> dict[str, str]:
    # the seed is a whole DAGSTER_HOME: Dagster keeps runs, event logs and schedules in three
    # SQLite files under it
    return {"DAGSTER_HOME": str(database)}


# Dagster creates its SQLite schema on first use; a webserver and a daemon starting together on an
# empty home both try, and one fails on alembic's "more than one head". Hence a migrated seed.
_DAGSTER_SEED = (
    "import os\n"
    "os.mkdir(os.environ['DAGSTER_HOME'])\n"
    "from dagster import DagsterInstance\n"
    "with DagsterInstance.get() as instance:\n"
    "    instance.upgrade()\n"
)

# Airflow is installed without its constraints file (fetching it needs more than PyPI); the
# integration tests are what proves this combination starts and runs a DAG.
AIRFLOW: Final = PeerSpec(
    name="airflow",
    distribution="apache-airflow",
    module="airflow",
    version="3.3.2",
    seed_file="airflow.db",
    seed_command=("airflow", "db", "migrate"),
    seed_env=_airflow_seed_env,
)
PREFECT: Final = PeerSpec(
    name="prefect",
    distribution="prefect",
    module="prefect",
    version="3.9.1",
    seed_file="prefect.db",
    seed_command=("prefect", "server", "database", "upgrade", "-y"),
    seed_env=_prefect_seed_env,
)
# dagster-webserver pins dagster and dagster-graphql to its own version, so this one requirement
# pins all three (the dagster release can run a patch ahead of the webserver's on PyPI).
DAGSTER: Final = PeerSpec(
    name="dagster",
    distribution="dagster-webserver",
    module="dagster_webserver",
    version="1.13.28",
    seed_file="dagster-home",
    seed_command=("python", "-c", _DAGSTER_SEED),
    seed_env=_dagster_seed_env,
)
PEERS: Final = {spec.name: spec for spec in (AIRFLOW, PREFECT, DAGSTER)}


class PeerError(RuntimeError):
    """A peer could not be installed or did not start; the message carries its log tail."""


def peers_dir() -> Path:
    """Where peer venvs are cached: ``$RETRIGGER_PEERS_DIR`` or ``~/.cache/retrigger/peers``."""
    configured = os.environ.get("RETRIGGER_PEERS_DIR")
    return Path(configured) if configured else Path.home() / ".cache" / "retrigger" / "peers"


def venv_dir(spec: PeerSpec) -> Path:
    return peers_dir() / f"{spec.name}-{spec.version}"


def bin_path(spec: PeerSpec, program: str) -> Path:
    return venv_dir(spec) / "bin" / program


def seed_path(spec: PeerSpec) -> Path:
    return venv_dir(spec) / "seed" / spec.seed_file


def is_installed(spec: PeerSpec) -> bool:
    """Whether a complete install of exactly this spec is cached."""
    venv = venv_dir(spec)
    try:
        marker = json.loads((venv / MARKER).read_text())
    except (OSError, ValueError):
        return False
    return (
        marker.get("requirement") == spec.requirement
        and (venv / "bin" / "python").exists()
        and seed_path(spec).exists()
    )


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without what would leak into a peer, plus ``extra``."""
    leaking = (
        "RETRIGGER_",
        "AIRFLOW",
        "PREFECT_",
        "DAGSTER_",
        "VIRTUAL_ENV",
        "PYTHONPATH",
        "PYTHONHOME",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(leaking)}
    env.update(extra)
    return env


@contextlib.contextmanager
def _locked(spec: PeerSpec) -> Iterator[None]:
    # two installers of the same peer (peers.sh and a test run) must not share a half-built venv
    peers_dir().mkdir(parents=True, exist_ok=True)
    with (peers_dir() / f"{spec.name}-{spec.version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _run(argv: Sequence[str], *, log: IO[str], env: Mapping[str, str], cwd: Path) -> None:
    log.write(f"$ {' '.join(argv)}\n")
    log.flush()
    done = subprocess.run(argv, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd)
    if done.returncode != 0:
        raise PeerError(f"{argv[0]} exited with {done.returncode}")


def install(spec: PeerSpec, *, echo: Callable[[str], None] = print) -> Path:
    """Create (or repair) the cached venv of ``spec`` with its seed database; return its path."""
    with _locked(spec):
        venv = venv_dir(spec)
        if is_installed(spec):
            return venv
        if venv.exists():
            shutil.rmtree(venv)  # an interrupted install: nothing in it can be trusted
        venv.mkdir(parents=True)
        log_path = venv / "install.log"
        started = time.monotonic()
        echo(f"installing {spec.requirement} into {venv}")
        env = clean_env(PIP_DISABLE_PIP_VERSION_CHECK="1")
        try:
            with log_path.open("w") as log, tempfile.TemporaryDirectory() as scratch:
                _run([sys.executable, "-m", "venv", str(venv)], log=log, env=env, cwd=venv)
                pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--no-input"]
                _run([*pip, spec.requirement], log=log, env=env, cwd=venv)
                installed = time.monotonic()
                seed = seed_path(spec)
                seed.parent.mkdir()
                command = [str(venv / "bin" / spec.seed_command[0]), *spec.seed_command[1:]]
                seed_env = clean_env(**spec.seed_env(Path(scratch), seed))
                _run(command, log=log, env=seed_env, cwd=Path(scratch))
                version = _installed_version(spec)
                if version != spec.version:
                    raise PeerError(f"{spec.module}.__version__ is {version}, not {spec.version}")
        except (PeerError, OSError) as exc:
            raise PeerError(f"installing {spec.name} failed: {exc}\n{tail(log_path)}") from exc
        marker = {"requirement": spec.requirement, "python": sys.version.split()[0]}
        (venv / MARKER).write_text(json.dumps(marker))
        echo(
            f"{spec.name} {spec.version}: installed in {installed - started:.0f} s, "
            f"database seeded in {time.monotonic() - installed:.0f} s"
        )
        return venv


def _installed_version(spec: PeerSpec) -> str:
    python = str(venv_dir(spec) / "bin" / "python")
    code = f"import {spec.module}; print({spec.module}.__version__)"
    done = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=clean_env(), check=False
    )
    return done.stdout.strip()


def prune(spec: PeerSpec, *, echo: Callable[[str], None] = print) -> None:
    """Remove cached venvs of other versions of this peer."""
    for old in sorted(peers_dir().glob(f"{spec.name}-[0-9]*")):
        if old.is_dir() and old != venv_dir(spec):
            echo(f"removing {old}")
            shutil.rmtree(old)
            old.with_name(old.name + ".lock").unlink(missing_ok=True)


def free_port() -> int:
    """A TCP port nobody listens on right now on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def tail(path: Path, lines: int = 60) -> str:
    """The last lines of a log file, headed by its path."""
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"--- {path}: unreadable"
    return "\n".join([f"--- last {len(text)} lines of {path}", *text])


@dataclass
class Process:
    """One peer process, leader of its own process group, logging to a file."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    def check_alive(self) -> None:
        """Raise PeerError with the log tail when the process has exited."""
        code = self.popen.poll()
        if code is not None:
            raise PeerError(f"{self.name} exited with {code}\n{tail(self.log)}")


def start(
    name: str, argv: Sequence[str], *, env: Mapping[str, str], cwd: Path, logs: Path
) -> Process:
    """Start ``argv`` in a new session (so its children can be stopped with it)."""
    log = logs / f"{name}.log"
    with log.open("wb") as out:
        popen = subprocess.Popen(
            list(argv),
            env=dict(env),
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Process(name, popen, log)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop(processes: Sequence[Process], *, grace: float = 15.0) -> None:
    """SIGTERM every process group, wait up to ``grace`` seconds, then SIGKILL what is left."""
    groups = [p.popen.pid for p in processes]
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
    # leaders may be gone while their children (task runners, API workers) linger
    while any(_group_alive(g) for g in groups) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pgid in groups:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    for proc in processes:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.popen.wait(timeout=5)


def wait_for(
    what: str,
    probe: Callable[[], T | None],
    *,
    processes: Sequence[Process] = (),
    timeout: float = 120.0,
    interval: float = 0.25,
) -> T:
    """Poll ``probe`` until it returns a value; fail early when a process dies, or at timeout."""
    deadline = time.monotonic() + timeout
    while True:
        for proc in processes:
            proc.check_alive()
        value = probe()
        if value is not None:
            return value
        if time.monotonic() > deadline:
            logs = "\n".join(tail(p.log) for p in processes)
            raise PeerError(f"timed out after {timeout:.0f} s waiting for {what}\n{logs}")
        time.sleep(interval)


def main(argv: Sequence[str] | None = None) -> int:
    """Command line of ``.ci/peers.sh``: install the named peers (default: all)."""
    parser = argparse.ArgumentParser(prog="python -m tests.integration.peers")
    sub = parser.add_subparsers(dest="command", required=True)
    install_cmd = sub.add_parser("install", help="create or refresh the cached peer venvs")
    install_cmd.add_argument("names", nargs="*", metavar="PEER", help=", ".join(PEERS))
    install_cmd.add_argument("--prune", action="store_true", help="remove other versions")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names) - set(PEERS))
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; known: {', '.join(PEERS)}")
    failed = False
    for spec in [PEERS[n] for n in args.names or PEERS]:
        started = time.monotonic()
        try:
            install(spec)
        except PeerError as exc:
            print(exc, file=sys.stderr)
            failed = True
            continue
        if args.prune:
            prune(spec)
        elapsed = time.monotonic() - started
        print(f"{spec.name} {spec.version} ready in {venv_dir(spec)} ({elapsed:.0f} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
