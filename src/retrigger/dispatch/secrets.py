"""Connection secrets by reference: ``env:NAME`` or ``file:/path``, resolved when used.

The database stores only the reference; the value is read in the process that talks to the
orchestrator, wrapped in ``SecretStr`` so it never reaches a log line or a response.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Final

from pydantic import SecretStr

from retrigger.errors import InvalidConfig

REF_PATTERN: Final = re.compile(r"^(env:[A-Za-z_][A-Za-z0-9_]{0,199}|file:/.{1,490})$")


class SecretUnavailable(Exception):
    """A referenced secret cannot be read here (variable unset, file missing)."""


def check_ref(ref: str) -> str:
    """Validate the shape of a reference; a literal secret is refused with a hint."""
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
    return ref


def resolve(ref: str | None) -> SecretStr | None:
    """The secret a reference names; SecretUnavailable when it cannot be read."""
    if ref is None:
        return None
    scheme, _, target = ref.partition(":")
    if scheme == "env":
        value = os.environ.get(target)
        if value is None:
            raise SecretUnavailable(f"environment variable {target} is not set")
        return SecretStr(value)
    if scheme == "file":
        try:
            return SecretStr(Path(target).read_text().strip())
        except OSError as exc:
            raise SecretUnavailable(f"secret file {target} unreadable: {exc.strerror}") from None
    raise SecretUnavailable(f"unknown secret reference scheme {scheme!r}")
