"""RFC 9457 problem details: the one JSON shape of every error response."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field
from starlette.responses import JSONResponse

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://retrigger.dev/problems/"


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Path of the offending field, e.g. ['body', 'name'].")
    msg: str
    type: str


class ErrorBody(BaseModel):
    """An RFC 9457 problem document."""

    type: str = Field(examples=[TYPE_BASE + "product-not-found"])
    title: str = Field(examples=["ProductNotFound"])
    status: int = Field(examples=[404])
    detail: str = Field(examples=["product 'fraud-scorer' not found"])
    instance: str | None = None
    request_id: str | None = None
    errors: list[FieldError] | None = None


def problem_response(
    status: int,
    title: str,
    detail: str,
    *,
    slug: str,
    errors: list[dict[str, Any]] | None = None,
    request_id: str | None = None,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, Any] = {
        "type": TYPE_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    if request_id:
        body["request_id"] = request_id
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=headers)


def _problem_entry(description: str) -> dict[str, Any]:
    return {"model": ErrorBody, "description": description, "content": {PROBLEM_MEDIA_TYPE: {}}}


COMMON_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem_entry("Malformed request (e.g. invalid JSON)."),
    401: _problem_entry("Missing, malformed or revoked API key."),
    403: _problem_entry("The key lacks the scope for this operation."),
    413: _problem_entry("Body larger than the configured limit."),
    415: _problem_entry("Body is not application/json."),
    422: _problem_entry("Validation failed; `errors` names every offending field."),
}


def responses(*codes: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses=`` entries for the given problem status codes."""
    descriptions = {
        404: "Not found (or not visible to this key).",
        409: "Conflicts with existing state (e.g. duplicate name).",
        503: "Not ready.",
    }
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        out[code] = COMMON_RESPONSES.get(code) or _problem_entry(descriptions.get(code, "Error."))
    return out
