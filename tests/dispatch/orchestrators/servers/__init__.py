"""In-process fake orchestrator servers for the contract suite, one module per kind.

Every module of this package exposes ``make_server() -> Server``; :func:`discover` finds them, so a
new adapter joins ``test_contract.py`` by adding ``servers/<kind>.py``.

The HTTP fakes derive from :class:`RecordingServer`, which records every request and answers
injected failures before the fake's own :meth:`RecordingServer.serve`.

A server may set ``SKIPS`` (a frozenset of :data:`CAPABILITIES` names) for contract cases that
cannot apply to its kind, e.g. the ``fake`` kind makes no HTTP call at all; and ``PARAMETERS``
(a dict) when the suite's default parameters are not valid for its pipeline (Dagster run config).
"""

from __future__ import annotations

import asyncio
import importlib
import pkgutil
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import httpx
from pydantic import BaseModel, SecretStr

from retrigger.dispatch.orchestrators import get_orchestrator
from retrigger.dispatch.orchestrators.base import (
    AuthType,
    ConnectionConfig,
    Orchestrator,
    RunState,
    make_client,
)

Handler = Callable[[httpx.Request], httpx.Response]

CAPABILITIES: Final = frozenset({"http", "finish", "cancel"})
"""Contract areas a server may opt out of: ``http`` (failure injection, raising transport),
``finish`` (the remote run can be driven to an end), ``cancel`` (the kind can stop a run)."""


class Server(Protocol):
    """A stateful fake of one orchestrator's documented HTTP API, served by ``httpx.MockTransport``.

    Attributes
    ----------
    kind : the adapter kind (``get_orchestrator(kind)`` gives the class under test).
    connection : the connection the adapter is built with, ``options`` already parsed.
    pipeline : a pipeline reference this server knows (``RetrainRequest.pipeline``).
    launched : how many pipeline runs were really started so far.

    A server plays the orchestrator's workers too: a cancel request it accepts ends the run as
    cancelled at once, so the suite can check ``cancel`` then ``get_status`` without waiting.
    """

    kind: str
    connection: ConnectionConfig
    pipeline: str

    @property
    def launched(self) -> int: ...

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Answer one request as the orchestrator would (synchronous, keeps state)."""
        ...

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests, whatever they are, with ``status``."""
        ...

    def finish(self, external_id: str, state: RunState) -> None:
        """Drive the remote run ``external_id`` to ``state``: SUCCEEDED or FAILED.

        Cancellation goes through the adapter's ``cancel`` instead, so kinds without a cancelled
        state of their own (Airflow) need not invent one here.
        """
        ...


@dataclass
class InjectedFailures:
    """The queue behind ``fail_next``: a handler returns :meth:`take`'s answer when it has one."""

    _pending: list[tuple[int, dict[str, str]]] = field(default_factory=list)

    def push(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Queue ``times`` answers of ``status``."""
        self._pending.extend([(status, dict(headers or {}))] * times)

    def take(self) -> httpx.Response | None:
        """The next injected answer, or None when the server should answer for real."""
        if not self._pending:
            return None
        status, headers = self._pending.pop(0)
        return httpx.Response(status, headers=headers, json={"detail": f"injected {status}"})


def unique_name(kind: str) -> str:
    """A connection name no other test uses: some fakes keep process-wide ledgers by name."""
    return f"{kind}-{uuid.uuid4().hex[:8]}"


class RecordingServer:
    """Base of the HTTP fakes: keeps every request and answers injected failures first.

    A subclass sets ``kind`` and ``pipeline``, defines ``launched`` and ``finish``, and answers
    for real in :meth:`serve`.
    """

    kind: str
    pipeline: str

    def __init__(
        self,
        base_url: str,
        options: BaseModel,
        *,
        auth: AuthType = AuthType.NONE,
        username: str | None = None,
        secret: str | None = None,
    ) -> None:
        self.connection = ConnectionConfig(
            name=unique_name(self.kind),
            kind=self.kind,
            base_url=base_url,
            auth=auth,
            username=username,
            secret=SecretStr(secret) if secret is not None else None,
            options=options,
        )
        self.requests: list[httpx.Request] = []
        """Every request received, in order, injected failures included."""
        self._failures = InjectedFailures()

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        """Answer the next ``times`` requests, whatever they are, with ``status``."""
        self._failures.push(status, times, headers)

    def handler(self, request: httpx.Request) -> httpx.Response:
        """Record ``request``, then answer it: an injected failure if one is queued, else serve."""
        self.requests.append(request)
        injected = self._failures.take()
        return injected if injected is not None else self.serve(request)

    def serve(self, request: httpx.Request) -> httpx.Response:
        """Answer ``request`` as the orchestrator would (synchronous, keeps state)."""
        raise NotImplementedError


@asynccontextmanager
async def connected(
    server: Server, handler: Handler | None = None, *, connection: ConnectionConfig | None = None
) -> AsyncIterator[Orchestrator]:
    """The adapter of ``server.kind`` wired to ``server`` (or to ``handler``) for a ``with`` block.

    ``connection`` replaces the server's own, e.g. to authenticate otherwise. Each request first
    yields to the event loop, as a real network round trip does, so that concurrent submissions
    interleave their requests instead of running one after the other.
    """
    answer = handler or server.handler

    async def interleaved(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0)
        return answer(request)

    cls = get_orchestrator(server.kind)
    connection = connection or server.connection
    http = make_client(cls, connection, transport=httpx.MockTransport(interleaved))
    try:
        yield cls(connection, http)
    finally:
        await http.aclose()


DEFAULT_PARAMETERS: Final = {"epochs": 3, "learning_rate": 0.01}


def parameters(server: Server) -> dict[str, Any]:
    """The rendered parameters the suite submits to ``server`` (its ``PARAMETERS`` if set)."""
    return dict(getattr(server, "PARAMETERS", DEFAULT_PARAMETERS))


def skips(server: Server) -> frozenset[str]:
    """The contract areas ``server`` opts out of (its ``SKIPS`` attribute, empty by default)."""
    declared: frozenset[str] = frozenset(getattr(server, "SKIPS", frozenset()))
    unknown = declared - CAPABILITIES
    if unknown:
        raise ValueError(f"{server.kind} server skips unknown areas: {sorted(unknown)}")
    return declared


def _broken(name: str, error: Exception) -> Callable[[], Server]:
    def make_server() -> Server:
        raise RuntimeError(f"servers/{name}.py does not import") from error

    return make_server


def discover() -> dict[str, Callable[[], Server]]:
    """Every ``make_server`` of this package, by module name.

    A module that fails to import yields a factory raising its error, so only its own contract
    cases fail instead of the whole suite's collection.
    """
    found: dict[str, Callable[[], Server]] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        try:
            module = importlib.import_module(f"{__name__}.{info.name}")
        except Exception as exc:  # reported when the factory is called, see docstring
            found[info.name] = _broken(info.name, exc)
            continue
        make = getattr(module, "make_server", None)
        if callable(make):
            found[info.name] = make
    return found
