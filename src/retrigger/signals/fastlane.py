"""A pure-ASGI lane in front of the routers for the commonest request: a few metric points.

``POST /v1/products/{product}/signals/metrics`` with a small body, no idempotency key, a cached
API key and valid points is stored and answered here, without routing, dependency injection or
an ORM session. Anything else, or anything unusual, goes on to the application with the body it
already read, so every other answer (every error above all) is the application's own.

The one autocommitted statement also marks the product for evaluation (``dirty_since``, as the
general path's ``mark_dirty`` does), so the evaluation these points owe is durable.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import datetime, timedelta
from typing import NamedTuple

import asyncpg
from pydantic import TypeAdapter
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retrigger import metrics
from retrigger.auth import service as auth_service
from retrigger.auth.scopes import ANONYMOUS_ADMIN, Principal
from retrigger.auth.scopes import Scope as KeyScope
from retrigger.auth.tokens import hash_secret
from retrigger.config import AuthMode, Settings
from retrigger.db.types import utcnow
from retrigger.decisions.scheduler import notify_ingested
from retrigger.signals import fastpath
from retrigger.signals.errors import SignalRejected
from retrigger.signals.schemas import MetricBatchIn, MetricsResult
from retrigger.signals.service import check_metric_times

log = logging.getLogger("retrigger.signals")

MAX_BODY = 8192  # fastpath.MAX_POINTS points with labels fit; bigger bodies are bulk uploads
# the route's path with its Slug rule for {product}: 1-63 of [a-z0-9-], no hyphen at either end
_PATH = re.compile(r"/v1/products/([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)/signals/metrics")
_RESULT = TypeAdapter(MetricsResult)  # what the route's response_model serializes with


class MetricsLane:
    """The lane; installed inside the request-context and body-limit middleware."""

    def __init__(self, app: ASGIApp, *, pool: fastpath.DriverPool) -> None:
        self.app = app
        self.pool = pool

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        authorization = self._candidate(scope)
        if authorization is None:
            await self.app(scope, receive, send)
            return
        replay = _Replay(receive)
        body = await replay.read_body(MAX_BODY)
        if body is None or not await self._serve(scope, authorization, body, send):
            await self.app(scope, replay.receive, send)

    def _candidate(self, scope: Scope) -> bytes | None:
        """The Authorization header (``b""`` if none) when the request may be for the lane."""
        if scope["type"] != "http" or scope["method"] != "POST" or scope.get("root_path"):
            return None
        if not self.pool.enabled or _PATH.fullmatch(scope["path"]) is None:
            return None
        app = scope.get("app")
        # overridden dependencies (a test's outer transaction, say) are the application's to run
        if app is None or getattr(app, "dependency_overrides", None):
            return None
        authorization: bytes | None = None
        length = 0
        is_json = False
        for name, value in scope["headers"]:
            if name == b"authorization":
                # the first one, as Starlette's ``headers.get`` takes it
                authorization = value if authorization is None else authorization
            elif name == b"content-length":
                length = int(value) if value.isdigit() else -1
            elif name == b"content-type":
                is_json = value.split(b";")[0].strip().lower() == b"application/json"
            elif name in (b"idempotency-key", b"transfer-encoding"):
                return None
        if not is_json or not 0 < length <= MAX_BODY:
            return None
        return authorization or b""

    async def _serve(self, scope: Scope, authorization: bytes, body: bytes, send: Send) -> bool:
        """Store and answer the batch; False, having stored nothing, when the app should."""
        state = scope["app"].state
        try:
            plan = _plan(state.settings, authorization, body, scope["path"])
        except Exception:
            log.exception("metrics lane: unexpected error, handing the request to the app")
            return False
        if plan is None:
            return False
        principal, product, batch, now = plan.principal, plan.product, plan.batch, plan.now
        try:
            conn = await self.pool.acquire()
        except Exception:
            log.warning("metrics lane: no database connection", exc_info=True)
            return False
        try:
            product_id = await fastpath.insert_points(
                conn, product=product, team_id=principal.team_id, batch=batch, now=now
            )
        except asyncpg.PostgresError:
            # the server refused the statement, so it stored nothing: the app answers it
            return False
        finally:
            await self.pool.release(conn)
        if product_id is None:  # unknown, or another team's: the app answers 404
            return False
        metrics.observe_ingest("metrics", product, "accepted", len(batch.points))
        metrics.observe_batch_size("metrics", len(batch.points))
        scope.setdefault("state", {})["key_id"] = principal.key_id
        result = MetricsResult(accepted=len(batch.points), batch_id=None, received_at=now)
        payload = _RESULT.dump_json(result)
        headers = [
            (b"content-length", str(len(payload)).encode()),
            (b"content-type", b"application/json"),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": payload})
        await notify_ingested(state, product_id)  # after the answer, as the route's task runs
        return True


class _Plan(NamedTuple):
    principal: Principal
    product: str
    batch: MetricBatchIn
    now: datetime


def _plan(settings: Settings, authorization: bytes, body: bytes, path: str) -> _Plan | None:
    """What to store for whom; None when the app must answer (the lane has stored nothing)."""
    principal = _principal(settings, authorization)
    if principal is None or not principal.has(KeyScope.ingest):
        return None
    try:
        batch = MetricBatchIn.model_validate(json.loads(body))
    except (ValueError, RecursionError):  # invalid JSON or points: the app's 400 or 422
        return None
    if batch.batch_id is not None or len(batch.points) >= fastpath.MAX_POINTS:
        return None
    now = utcnow()
    max_future = timedelta(seconds=settings.signals_max_future_seconds)
    try:
        check_metric_times(batch.points, now=now, max_future=max_future)
    except SignalRejected:
        return None
    match = _PATH.fullmatch(path)
    assert match is not None  # checked by _candidate
    return _Plan(principal, match.group(1), batch, now)


def _principal(settings: Settings, authorization: bytes) -> Principal | None:
    """The caller as ``get_principal`` finds it, when the key is in the per-process cache."""
    if settings.auth is AuthMode.disabled:
        return ANONYMOUS_ADMIN
    scheme, _, token = authorization.decode("latin-1").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token:
        return None
    return auth_service.PRINCIPALS.get(hash_secret(token))


class _Replay:
    """A ``receive`` that hands the application what the lane already read, then the rest."""

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self._messages: list[Message] = []
        self._error: Exception | None = None

    async def read_body(self, limit: int) -> bytes | None:
        """The whole body, or None (disconnect, more than ``limit`` bytes, a receive error)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            try:
                message = await self._receive()
            except Exception as exc:  # e.g. a body limit: the app meets it where it reads
                self._error = exc
                return None
            self._messages.append(message)
            if message["type"] != "http.request":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > limit:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def receive(self) -> Message:
        if self._messages:
            return self._messages.pop(0)
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        return await self._receive()
