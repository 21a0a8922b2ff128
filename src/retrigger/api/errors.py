"""Exception handlers: every error leaves as ``application/problem+json``, none as a bare 500."""

from __future__ import annotations

import json
import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError, IntegrityError, OperationalError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from retrigger.api.problems import problem_response
from retrigger.errors import RetriggerError
from retrigger.schemas import find_nul, format_loc

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
    # named the way the docs name fields: points[3].value, query.since
    fields = "; ".join(f"{format_loc(e['loc'])}: {e['msg']}" for e in errors[:5])
    more = f" (and {len(errors) - 5} more)" if len(errors) > 5 else ""
    return problem_response(
        422,
        "ValidationError",
        f"invalid request: {fields}{more}",
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


# PostgreSQL refusing a NUL character: in text (22021) or as \u0000 in JSONB (22P05)
_NUL_SQLSTATES = frozenset({"22021", "22P05"})


def _is_nul_error(exc: DBAPIError) -> bool:
    code = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    text = str(exc.orig)
    return code in _NUL_SQLSTATES or "0x00" in text or "\\u0000" in text


async def data_error_handler(request: Request, exc: Exception) -> Response:
    """A NUL character that reached PostgreSQL (SQLite stores it) is the client's 422.

    Request models refuse NUL in the strings they know; this names the field of any other one
    (free-form JSON, a field added later) from the body the request carried.
    """
    assert isinstance(exc, DBAPIError)
    if not _is_nul_error(exc):
        return await unhandled_error_handler(request, exc)
    loc: tuple[str | int, ...] | None = None
    try:
        loc = find_nul(json.loads(await request.body()))
    except Exception:  # no body left to read, or not JSON: the error still is the client's
        loc = None
    msg = "must not contain the NUL character (\\u0000)"
    where = f"{format_loc(('body', *loc))}: " if loc else "a string "
    return problem_response(
        422,
        "ValidationError",
        f"invalid request: {where}{msg}",
        slug="validation-error",
        errors=[{"loc": ["body", *(loc or ())], "msg": msg, "type": "nul_character"}],
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
    app.add_exception_handler(DBAPIError, data_error_handler)  # the subclasses above first
    app.add_exception_handler(Exception, unhandled_error_handler)
