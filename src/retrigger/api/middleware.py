"""Pure ASGI middleware: request ids, HTTP metrics, and body limits enforced before parsing."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from retrigger import metrics
from retrigger.api.problems import problem_response
from retrigger.logs import request_id_var

log = logging.getLogger("retrigger.api")

_BODY_METHODS = {b"POST", b"PUT", b"PATCH"}


class RouteTemplates:
    """Maps a concrete path to its route template (``/v1/products/{product}``) for metric labels.

    Built once from the OpenAPI paths, so labels stay bounded whatever paths clients send and
    whatever way the framework nests routers.
    """

    def __init__(self, paths: Callable[[], Iterable[str]]) -> None:
        self._paths = paths
        self._compiled: list[tuple[re.Pattern[str], str]] | None = None

    def match(self, path: str) -> str:
        if self._compiled is None:
            compiled: list[tuple[re.Pattern[str], str]] = []
            for template in self._paths():
                regex = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
                compiled.append((re.compile(f"^{regex}$"), template))
            # the most literal text first: /r/{v}:activate before /r/{v}, /p/x before /p/{p}
            compiled.sort(key=lambda item: -len(re.sub(r"\{[^/]+?\}", "", item[1])))
            self._compiled = compiled
        for pattern, template in self._compiled:
            if pattern.match(path):
                return template
        return "unmatched"


class RequestContextMiddleware:
    """Assigns a request id, counts and times the request by its route template."""

    def __init__(self, app: ASGIApp, *, templates: RouteTemplates) -> None:
        self.app = app
        self.templates = templates

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        incoming = headers.get(b"x-request-id", b"").decode("latin-1")
        rid = incoming if 0 < len(incoming) <= 64 and incoming.isprintable() else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        token = request_id_var.set(rid)
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", rid.encode())]
            await send(message)

        metrics.HTTP_IN_FLIGHT.inc()
        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            metrics.HTTP_IN_FLIGHT.dec()
            template = self.templates.match(scope.get("path", ""))
            method = scope.get("method", "GET")
            metrics.HTTP_REQUESTS.labels(method, template, str(status)).inc()
            metrics.HTTP_LATENCY.labels(method, template).observe(time.perf_counter() - start)
            request_id_var.reset(token)


class BodyLimitMiddleware:
    """413 for bodies over the limit, 415 for non-JSON bodies, before anything parses them.

    A declared Content-Length over the limit is refused without reading a byte; a chunked body is
    counted as it streams and refused as soon as it passes the limit.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method", "").encode() not in _BODY_METHODS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length_header = headers.get(b"content-length")
        if length_header is not None:
            try:
                declared = int(length_header)
            except ValueError:
                declared = -1
            if declared < 0:
                await self._reject(scope, send, 400, "BadRequest", "invalid Content-Length", "bad")
                return
            if declared > self.max_body_bytes:
                await self._too_large(scope, send)
                return
            if declared == 0:
                await self.app(scope, receive, send)
                return
        elif b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body at all
            return
        content_type = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if not (content_type == b"application/json" or content_type.endswith(b"+json")):
            metrics.HTTP_BODY_REJECTED.labels("unsupported_media_type").inc()
            await self._reject(
                scope,
                send,
                415,
                "UnsupportedMediaType",
                "request bodies must be application/json",
                "unsupported-media-type",
            )
            return

        received = 0
        limit = self.max_body_bytes

        async def limited_receive() -> Message:
            # a streamed body: FastAPI re-raises HTTPException from body reading as is
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    metrics.HTTP_BODY_REJECTED.labels("too_large").inc()
                    raise HTTPException(413, f"request body exceeds {limit} bytes")
            return message

        await self.app(scope, limited_receive, send)

    async def _too_large(self, scope: Scope, send: Send) -> None:
        metrics.HTTP_BODY_REJECTED.labels("too_large").inc()
        await self._reject(
            scope,
            send,
            413,
            "PayloadTooLarge",
            f"request body exceeds {self.max_body_bytes} bytes",
            "payload-too-large",
        )

    async def _reject(
        self, scope: Scope, send: Send, status: int, title: str, detail: str, slug: str
    ) -> None:
        state: dict[str, Any] = scope.get("state") or {}
        response = problem_response(
            status,
            title,
            detail,
            slug=slug,
            request_id=state.get("request_id"),
            instance=scope.get("path"),
            headers={"Connection": "close"} if status == 413 else None,
        )

        async def _empty_receive() -> Message:
            return {"type": "http.disconnect"}

        await response(scope, _empty_receive, send)
