"""Connection secrets by reference: ``env:NAME`` or ``file:/path``, resolved when used.

The database stores only the reference; the value is read in the process that talks to the
orchestrator, wrapped in ``SecretStr`` so it never reaches a log line or a response. A reference
may not name retrigger's own secrets: ``RETRIGGER_*`` variables, the database and ``.env`` files,
``/proc``, ``/sys`` and ``/dev``; ``RETRIGGER_SECRET_ENV_ALLOW`` and ``RETRIGGER_SECRET_FILE_DIRS``
narrow it further. The rules are checked when a connection is saved and again at every use.
"""

from __future__ import annotations

import fnmatch
import os
import re
import stat
from typing import Final

from pydantic import SecretStr
from sqlalchemy.engine import make_url

from retrigger.config import Settings
from retrigger.errors import InvalidConfig

REF_PATTERN: Final = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]{0,199}|file:/.{1,490})$")
SYSTEM_DIRS: Final = ("/proc", "/sys", "/dev")
MAX_SECRET_BYTES: Final = 64 * 1024


class SecretUnavailable(Exception):
    """A referenced secret cannot be read here (variable unset, file missing)."""


class SecretRefused(SecretUnavailable):
    """A reference names something a connection may not read (``RETRIGGER_*``, ``/proc``...)."""


def _invalid(msg: str) -> InvalidConfig:
    return InvalidConfig(
        msg, errors=[{"loc": ["body", "auth", "secret_ref"], "msg": msg, "type": "value_error"}]
    )


def check_ref(ref: str, settings: Settings) -> str:
    """Validate a reference when it is saved: its shape (a literal secret is refused with a
    hint), then what it may name; 422 naming ``auth.secret_ref``."""
    if not REF_PATTERN.match(ref):
        raise InvalidConfig(
            "secret_ref must be env:NAME or file:/absolute/path; secrets are never stored",
            errors=[
                {
                    "loc": ["body", "auth", "secret_ref"],
                    "msg": "expected env:NAME or file:/absolute/path",
                    "type": "value_error",
                }
            ],
        )
    problem = refusal(ref, settings)
    if problem is not None:
        raise _invalid(problem)
    return ref


def refusal(ref: str, settings: Settings) -> str | None:
    """Why ``ref`` may not be read under ``settings``, or None when it may."""
    scheme, _, target = ref.partition(":")
    if scheme == "env":
        return _env_refusal(target, settings)
    if scheme == "file":
        return _file_refusal(target, settings)
    return f"unknown secret reference scheme {scheme!r}"


def _env_refusal(name: str, settings: Settings) -> str | None:
    # settings are read case-insensitively, so retrigger_database_url is one of ours too
    if name.upper().startswith("RETRIGGER_"):
        return f"env:{name} refused: RETRIGGER_* variables hold retrigger's own settings"
    patterns = settings.secret_env_patterns
    if not any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns):
        allowed = ", ".join(patterns) or "none"
        return f"env:{name} refused: RETRIGGER_SECRET_ENV_ALLOW allows {allowed}"
    return None


def _under(path: str, root: str) -> bool:
    return root == "/" or path == root or path.startswith(root + "/")


def _own_files(settings: Settings) -> set[str]:
    """The files holding retrigger's own secrets: the SQLite database (and its journals) and
    the ``.env`` file settings are read from."""
    own = {os.path.realpath(".env")}
    if settings.is_sqlite:
        database = make_url(settings.database_url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            base = os.path.realpath(os.path.expanduser(database))
            own.update({base, f"{base}-wal", f"{base}-shm", f"{base}-journal"})
    return own


def _file_refusal(target: str, settings: Settings) -> str | None:
    # realpath: "..", and symlinks of the parts that exist, cannot lead out of the allowed places
    path = os.path.realpath(target)
    roots = [os.path.realpath(d) for d in settings.secret_file_roots]
    if roots and not any(_under(path, root) for root in roots):
        allowed = ", ".join(settings.secret_file_roots)
        return f"file:{target} refused: RETRIGGER_SECRET_FILE_DIRS allows files under {allowed}"
    if any(_under(path, root) for root in SYSTEM_DIRS):
        return f"file:{target} refused: nothing under {', '.join(SYSTEM_DIRS)} is a secret file"
    if path in _own_files(settings):
        return f"file:{target} refused: it is one of retrigger's own database or settings files"
    return None


def resolve(ref: str | None, settings: Settings) -> SecretStr | None:
    """The secret a reference names; SecretRefused if it may not be read (the rules are checked
    again: settings change and symlinks move), SecretUnavailable when it cannot be."""
    if ref is None:
        return None
    problem = refusal(ref, settings)
    if problem is not None:
        raise SecretRefused(problem)
    scheme, _, target = ref.partition(":")
    if scheme == "env":
        value = os.environ.get(target)
        if value is None:
            raise SecretUnavailable(f"environment variable {target} is not set")
        return SecretStr(value)
    return SecretStr(_read_file(target))


def _read_file(target: str) -> str:
    # the checked real path, opened without following a symlink swapped in since; a regular
    # file only (a FIFO would block the dispatcher)
    path = os.path.realpath(target)
    try:
        fd = os.open(
            path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        )
    except OSError as exc:
        raise SecretUnavailable(f"secret file {target} unreadable: {exc.strerror}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise SecretUnavailable(f"secret file {target} is not a regular file")
        with os.fdopen(fd, "rb", closefd=False) as handle:
            data = handle.read(MAX_SECRET_BYTES + 1)
    except OSError as exc:
        raise SecretUnavailable(f"secret file {target} unreadable: {exc.strerror}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_SECRET_BYTES:
        raise SecretUnavailable(f"secret file {target} is larger than {MAX_SECRET_BYTES} bytes")
    try:
        return data.decode().strip()
    except UnicodeDecodeError:
        raise SecretUnavailable(f"secret file {target} is not UTF-8 text") from None
