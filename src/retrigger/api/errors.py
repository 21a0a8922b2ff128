"""Exception handlers: every error leaves as ``application/problem+json``, none as a bare 500."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from retrigger.api.problems import problem_response
from retrigger.errors import RetriggerError

log = logging.getLogger("retrigger.api")

_HTTP_TITLES = {
    400: "BadRequest",
    401: "Unauthenticated",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    413: "PayloadTooLarge",
    415: "UnsupportedMediaType",
}


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


def _clean(value: Any) -> Any:
    """Make pydantic error context JSON-safe (it can hold exceptions and bytes)."""
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    return str(value)


def validation_errors(exc: RequestValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors():
        out.append(
            {
                "loc": [p if isinstance(p, int) else str(p) for p in err.get("loc", ())],
                "msg": str(err.get("msg", "")),
                "type": str(err.get("type", "value_error")),
            }
        )
    return out


async def retrigger_error_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RetriggerError)
    status = exc.status_code
    if status >= 500:
        log.warning("%s: %s", type(exc).__name__, exc.message)
    return problem_response(
        status,
        type(exc).__name__,
        exc.message,
        slug=exc.type_slug(),
        errors=_clean(exc.errors) if exc.errors else None,
        request_id=_request_id(request),
        instance=request.url.path,
        headers={"WWW-Authenticate": "Bearer"} if status == 401 else None,
    )


async def request_validation_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = validation_errors(exc)
    if any(e["type"] == "json_invalid" for e in errors):
        return problem_response(
            400,
            "MalformedJSON",
            "request body is not valid JSON",
            slug="malformed-json",
            errors=errors,
            request_id=_request_id(request),
            instance=request.url.path,
        )
    fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in errors[:5])
    return problem_response(
        422,
        "ValidationError",
        f"invalid request: {fields}",
        slug="validation-error",
        errors=errors,
        request_id=_request_id(request),
        instance=request.url.path,
    )


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    title = _HTTP_TITLES.get(exc.status_code, "HTTPError")
    slug = "".join("-" + c.lower() if c.isupper() else c for c in title).lstrip("-")
    detail = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == 404 and detail == "Not Found":
        detail = f"no route for {request.method} {request.url.path}"
    return problem_response(
        exc.status_code,
        title,
        detail,
        slug=slug,
        request_id=_request_id(request),
        instance=request.url.path,
        headers=dict(exc.headers) if exc.headers else None,
    )


async def integrity_error_handler(request: Request, exc: Exception) -> Response:
    log.info("integrity conflict on %s: %s", request.url.path, type(exc).__name__)
    return problem_response(
        409,
        "Conflict",
        "the request conflicts with existing data (duplicate or still referenced)",
        slug="conflict",
        request_id=_request_id(request),
        instance=request.url.path,
    )


async def operational_error_handler(request: Request, exc: Exception) -> Response:
    """A busy SQLite database (another writer held the lock past the busy timeout) is a 503 the
    client may retry; any other driver-level failure stays an internal error."""
    if "database is locked" not in str(exc):
        return await unhandled_error_handler(request, exc)
    log.warning("database busy on %s: the request may be retried", request.url.path)
    return problem_response(
        503,
        "DatabaseBusy",
        "the database is busy with another write; retry shortly",
        slug="database-busy",
        request_id=_request_id(request),
        instance=request.url.path,
        headers={"Retry-After": "1"},
    )


async def unhandled_error_handler(request: Request, exc: Exception) -> Response:
    rid = _request_id(request)
    log.exception("unhandled error (request_id=%s)", rid)
    return problem_response(
        500,
        "InternalError",
        f"internal error; quote request id {rid} when reporting it",
        slug="internal-error",
        request_id=rid,
        instance=request.url.path,
    )


def install(app: FastAPI) -> None:
    app.add_exception_handler(RetriggerError, retrigger_error_handler)
    app.add_exception_handler(RequestValidationError, request_validation_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    app.add_exception_handler(IntegrityError, integrity_error_handler)
    app.add_exception_handler(OperationalError, operational_error_handler)
    app.add_exception_handler(Exception, unhandled_error_handler)
