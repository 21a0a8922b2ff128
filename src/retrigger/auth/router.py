"""``/v1/api-keys``: create (token shown once), list, read, revoke."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from retrigger.api.deps import AdminPrincipal, SessionDep
from retrigger.api.problems import responses
from retrigger.auth import service as auth_service
from retrigger.auth.models import ApiKey
from retrigger.auth.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyRead
from retrigger.schemas import Page, decode_cursor, encode_cursor

router = APIRouter(prefix="/api-keys", tags=["api-keys"])


@router.post(
    "",
    status_code=201,
    response_model=ApiKeyCreated,
    responses=responses(400, 401, 403, 404, 413, 415, 422),
)
async def create_api_key(
    body: ApiKeyCreate, session: SessionDep, principal: AdminPrincipal
) -> ApiKeyCreated:
    """Create a key. The token is in this response only; store it now."""
    key, token = await auth_service.create(session, principal=principal, key_in=body)
    read = ApiKeyRead.model_validate(key).model_dump()
    return ApiKeyCreated.model_validate({**read, "team_name": read.pop("team"), "token": token})


@router.get("", response_model=Page[ApiKeyRead], responses=responses(401, 403, 422))
async def list_api_keys(
    session: SessionDep,
    principal: AdminPrincipal,
    include_revoked: bool = False,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[ApiKeyRead]:
    """List keys visible to the admin key (never their secrets)."""
    rows, next_id = await auth_service.list_(
        session,
        principal=principal,
        include_revoked=include_revoked,
        after_id=decode_cursor(cursor),
        limit=limit,
    )
    return Page(
        items=[ApiKeyRead.model_validate(r) for r in rows], next_cursor=encode_cursor(next_id)
    )


@router.get("/{key_id}", response_model=ApiKeyRead, responses=responses(401, 403, 404, 422))
async def get_api_key(
    key_id: Annotated[str, Path(pattern=r"^[a-z2-7]{8}$")],
    session: SessionDep,
    principal: AdminPrincipal,
) -> ApiKey:
    """Read one key's metadata."""
    return await auth_service.get_visible_or_raise(session, principal=principal, key_id=key_id)


@router.delete("/{key_id}", status_code=204, responses=responses(401, 403, 404, 409, 422))
async def revoke_api_key(
    key_id: Annotated[str, Path(pattern=r"^[a-z2-7]{8}$")],
    session: SessionDep,
    principal: AdminPrincipal,
    reason: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    """Revoke a key; it stops working at once and stays listed with `include_revoked`."""
    await auth_service.revoke(session, principal=principal, key_id=key_id, reason=reason)
    return Response(status_code=204)
