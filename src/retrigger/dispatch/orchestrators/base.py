"""The orchestrator port: what every adapter implements, and the HTTP edge they share.

An adapter turns a :class:`RetrainRequest` into one pipeline run on its orchestrator and reports
that run's state. It talks only through the ``httpx.AsyncClient`` it is given (tests inject a
``MockTransport``), imports no ORM model, and lets no httpx exception escape: timeouts, connection
errors, 5xx, 408, 429 and malformed answers become :class:`OrchestratorUnavailable` (retried by
the dispatcher), other 4xx become :class:`OrchestratorRejected` (terminal).
"""

from __future__ import annotations

import abc
import asyncio
import email.utils
import json
from collections.abc import AsyncIterator, Collection, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, ClassVar

import httpx
from pydantic import BaseModel, ConfigDict, SecretStr

from retrigger.errors import InvalidConfig, OrchestratorRejected, OrchestratorUnavailable

__all__ = [
    "AuthType",
    "ConnectionConfig",
    "KeyLocks",
    "NoOptions",
    "Orchestrator",
    "RemoteStatus",
    "RetrainRequest",
    "RunRef",
    "RunState",
    "launch_context",
    "make_client",
    "retry_after_seconds",
]


class RunState(StrEnum):
    """A remote run's state, mapped from each orchestrator's own vocabulary."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in (RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED)


class AuthType(StrEnum):
    """How a connection authenticates; the secret itself is resolved at dispatch time."""

    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"
    AIRFLOW_JWT = "airflow_jwt"
    GITHUB_TOKEN = "github_token"
    WEBHOOK_SECRET = "webhook_secret"


class NoOptions(BaseModel):
    """Options of an adapter that takes none."""

    model_config = ConfigDict(extra="forbid", frozen=True)


@dataclass(frozen=True)
class ConnectionConfig:
    """A connection as an adapter sees it: the secret already resolved, never logged."""

    name: str
    kind: str
    base_url: str
    auth: AuthType = AuthType.NONE
    username: str | None = None
    secret: SecretStr | None = None
    verify_tls: bool = True
    timeout_seconds: float = 10.0
    options: BaseModel = field(default_factory=NoOptions)


@dataclass(frozen=True)
class RetrainRequest:
    """One launch: the pipeline, its rendered parameters, and the context a pipeline needs.

    ``idempotency_key`` is derived from the run id and is stable across retries; adapters pass it
    as the orchestrator's own idempotency primitive so a retried submission launches nothing new.
    """

    idempotency_key: str
    run_id: int
    product: str
    pipeline: str
    parameters: Mapping[str, Any]
    decision_id: int | None = None
    reasons: tuple[str, ...] = ()
    context: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunRef:
    """Where a launched run lives: its id on the orchestrator, a link, adapter-private data.

    ``data`` must be JSON-safe: it is stored on the run and handed back to ``get_status``.
    """

    external_id: str
    url: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RemoteStatus:
    """A remote run's state, a human detail, and outputs it reported (e.g. ``model_version``)."""

    state: RunState
    detail: str = ""
    outputs: Mapping[str, Any] = field(default_factory=dict)
    ref: RunRef | None = None
    """The run's reference when the poll resolved a better one than the stored one (GitHub
    Actions learns the run id after the dispatch); the poller stores it."""


def launch_context(request: RetrainRequest) -> dict[str, Any]:
    """The context a pipeline receives: product, run, decision, reasons, window, versions."""
    context: dict[str, Any] = {
        "product": request.product,
        "run_id": request.run_id,
        "decision_id": request.decision_id,
        "reasons": list(request.reasons),
    }
    context.update(request.context)
    return context


class KeyLocks:
    """One asyncio lock per key, dropped when nobody holds or waits for it.

    Adapters of orchestrators without an idempotency key hold it around "look up, then create",
    so two submissions of one run in this process cannot both create it.
    """

    def __init__(self) -> None:
        self._entries: dict[tuple[str, ...], tuple[asyncio.Lock, list[int]]] = {}

    @asynccontextmanager
    async def hold(self, key: tuple[str, ...]) -> AsyncIterator[None]:
        lock, users = self._entries.setdefault(key, (asyncio.Lock(), [0]))
        users[0] += 1
        try:
            async with lock:
                yield
        finally:
            users[0] -= 1
            if users[0] == 0:
                del self._entries[key]


class Orchestrator(abc.ABC):
    """One orchestrator kind. Subclasses set ``kind`` and implement submit/get_status/cancel."""

    kind: ClassVar[str]
    options_model: ClassVar[type[BaseModel]] = NoOptions
    """Kind-specific connection options, validated when a connection is saved."""
    auth_types: ClassVar[frozenset[AuthType]] = frozenset(
        {AuthType.NONE, AuthType.BASIC, AuthType.BEARER}
    )
    """Auth types this kind accepts; others are refused when a connection is saved."""
    reports_status: ClassVar[bool] = True
    """False when the orchestrator cannot be polled; the run then waits for its callback."""

    def __init__(self, connection: ConnectionConfig, http: httpx.AsyncClient) -> None:
        self.connection = connection
        self.http = http

    @classmethod
    def parse_options(cls, options: Mapping[str, Any] | None) -> BaseModel:
        """Validate kind-specific options; InvalidConfig names the offending field."""
        from pydantic import ValidationError

        try:
            return cls.options_model.model_validate(dict(options or {}))
        except ValidationError as exc:
            errors = [
                {"loc": ["body", "options", *e["loc"]], "msg": e["msg"], "type": e["type"]}
                for e in exc.errors(include_url=False, include_input=False)
            ]
            raise InvalidConfig(
                f"invalid options for a {cls.kind} connection", errors=errors
            ) from None

    @classmethod
    def http_auth(cls, connection: ConnectionConfig) -> httpx.Auth | None:
        """The httpx auth for this connection; adapters with a login flow override it."""
        secret = connection.secret.get_secret_value() if connection.secret else None
        if connection.auth is AuthType.BASIC:
            return httpx.BasicAuth(connection.username or "", secret or "")
        if connection.auth in (AuthType.BEARER, AuthType.GITHUB_TOKEN) and secret:
            return _HeaderAuth("Authorization", f"Bearer {secret}")
        return None

    @abc.abstractmethod
    async def submit(self, request: RetrainRequest) -> RunRef:
        """Launch once per ``request.idempotency_key``; a repeat returns the same run."""

    @abc.abstractmethod
    async def get_status(self, ref: RunRef) -> RemoteStatus:
        """The run's current state on the orchestrator."""

    @abc.abstractmethod
    async def cancel(self, ref: RunRef) -> None:
        """Ask the orchestrator to stop the run; a run already finished is not an error."""

    async def request(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        content: bytes | None = None,
        allow: Collection[int] = (),
    ) -> httpx.Response:
        """Send one request; translate transport errors and error statuses into our errors.

        Statuses in ``allow`` (e.g. 409 on a duplicate id) are returned to the caller as is.
        """
        try:
            response = await self.http.request(
                method, url, json=json_body, params=params, headers=headers, content=content
            )
        except httpx.TimeoutException as exc:
            raise OrchestratorUnavailable(f"{self.kind}: {method} {url} timed out") from exc
        except httpx.TransportError as exc:
            raise OrchestratorUnavailable(
                f"{self.kind}: {method} {url} failed: {type(exc).__name__}"
            ) from exc
        status = response.status_code
        if status in allow or status < 400:
            return response
        message = f"{self.kind}: {method} {url} answered {status}: {_snippet(response)}"
        if status >= 500 or status in (408, 425, 429):
            raise OrchestratorUnavailable(message, retry_after=retry_after_seconds(response))
        raise OrchestratorRejected(message)

    def json_of(self, response: httpx.Response) -> Any:
        """The JSON body of a response; a malformed body is retryable, as a proxy error would be."""
        try:
            return response.json()
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OrchestratorUnavailable(
                f"{self.kind}: malformed JSON from {response.request.method} "
                f"{response.request.url.path}: {_snippet(response)}"
            ) from exc

    def malformed(self, what: str) -> OrchestratorUnavailable:
        """The error for an answer that parses but lacks what the documented API promises."""
        return OrchestratorUnavailable(f"{self.kind}: malformed answer: {what}")


class _HeaderAuth(httpx.Auth):
    def __init__(self, name: str, value: str) -> None:
        self._name, self._value = name, value

    def auth_flow(self, request: httpx.Request):  # type: ignore[no-untyped-def]
        request.headers[self._name] = self._value
        yield request


def retry_after_seconds(response: httpx.Response) -> float | None:
    """``Retry-After`` as seconds (delta-seconds or an HTTP date), None when absent or invalid."""
    value = response.headers.get("retry-after")
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _snippet(response: httpx.Response, limit: int = 300) -> str:
    try:
        text = response.text
    except UnicodeDecodeError:
        return f"<{len(response.content)} bytes>"
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."


def make_client(
    adapter: type[Orchestrator],
    connection: ConnectionConfig,
    *,
    transport: httpx.AsyncBaseTransport | None = None,
) -> httpx.AsyncClient:
    """An httpx client for ``connection``: base URL, TLS, timeouts and the adapter's auth."""
    return httpx.AsyncClient(
        base_url=connection.base_url,
        auth=adapter.http_auth(connection),
        verify=connection.verify_tls,
        timeout=httpx.Timeout(connection.timeout_seconds),
        transport=transport,
        headers={"User-Agent": "retrigger"},
        follow_redirects=False,
    )
