"""The error tree of retrigger: every domain error derives from one class with an HTTP status.

    RetriggerError (500)
    ├── NotFound (404)                 the thing does not exist or is not visible to the caller
    ├── Conflict (409)                 a unique name or state transition clashes
    ├── InvalidConfig (422)            a document or parameter is well formed but not acceptable
    │   └── InvalidSample (422)        statistics input that cannot be tested (empty, wrong kind)
    ├── Unauthenticated (401)          no key, a malformed key, or a revoked key
    ├── Forbidden (403)                the key lacks the scope for the operation
    ├── PayloadTooLarge (413)          the body exceeds the configured limit
    ├── OrchestratorUnavailable (503)  retryable: timeout, connection error, 5xx
    └── OrchestratorRejected (502)     terminal: the orchestrator refused the request (4xx)

Errors carry a message and, for validation problems, a list of offending locations so the API
layer can render RFC 9457 problem details naming each field. This module imports nothing from the
web stack: statistics and services raise these freely.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar


class RetriggerError(Exception):
    """Base of all retrigger errors; ``status_code`` is what the API answers."""

    status_code: ClassVar[int] = 500

    def __init__(self, message: str, *, errors: Sequence[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.errors: list[dict[str, Any]] = list(errors or [])

    @classmethod
    def type_slug(cls) -> str:
        """Stable kebab-case identifier used in the problem ``type`` URI."""
        name = cls.__name__
        out: list[str] = []
        for i, ch in enumerate(name):
            if ch.isupper() and i and not name[i - 1].isupper():
                out.append("-")
            out.append(ch.lower())
        return "".join(out)


class NotFound(RetriggerError):
    status_code = 404


class Conflict(RetriggerError):
    status_code = 409


class InvalidConfig(RetriggerError):
    status_code = 422


class InvalidSample(InvalidConfig):
    """Statistics input that cannot be tested: empty after cleaning, wrong kind, bad shape."""


class Unauthenticated(RetriggerError):
    status_code = 401


class Forbidden(RetriggerError):
    status_code = 403


class PayloadTooLarge(RetriggerError):
    status_code = 413


class OrchestratorUnavailable(RetriggerError):
    """Retryable: timeout, connection error, 5xx, 429 or a malformed answer.

    ``retry_after`` carries the orchestrator's ``Retry-After`` (seconds) when it sent one.
    """

    status_code = 503

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[dict[str, Any]] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message, errors=errors)
        self.retry_after = retry_after


class OrchestratorRejected(RetriggerError):
    """Terminal: the orchestrator refused the request (4xx other than 408/429); never retried."""

    status_code = 502
