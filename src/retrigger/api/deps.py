"""FastAPI dependencies shared by every router: settings, the unit of work, the principal."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.auth import service as auth_service
from retrigger.auth.scopes import ANONYMOUS_ADMIN, Principal, Scope
from retrigger.config import AuthMode, Settings
from retrigger.errors import Forbidden, Unauthenticated


async def get_settings(request: Request) -> Settings:
    # async: a sync dependency would be sent to the thread pool on every request
    settings: Settings = request.app.state.settings
    return settings


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    """One unit of work per request: committed before the response leaves, else rolled back."""
    async with request.app.state.db.session_scope() as session:
        yield session


SettingsDep = Annotated[Settings, Depends(get_settings)]
# scope="function": the commit happens before the response is sent, so a 2xx means committed
SessionDep = Annotated[AsyncSession, Depends(get_session, scope="function")]


async def get_principal(request: Request, session: SessionDep, settings: SettingsDep) -> Principal:
    """The caller, from ``Authorization: Bearer rtk_...``; 401 when missing, malformed, revoked."""
    if settings.auth is AuthMode.disabled:
        return ANONYMOUS_ADMIN
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if not header:
        raise Unauthenticated("missing Authorization header (expected: Bearer <api key>)")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated("malformed Authorization header (expected: Bearer <api key>)")
    principal = await auth_service.authenticate(session, token.strip())
    request.state.key_id = principal.key_id
    return principal


PrincipalDep = Annotated[Principal, Depends(get_principal)]


def require(scope: Scope) -> Any:
    """A dependency that yields the principal if it holds ``scope``, else 403."""

    async def _check(principal: PrincipalDep) -> Principal:
        if not principal.has(scope):
            raise Forbidden(f"this operation needs the '{scope}' scope")
        return principal

    return Depends(_check)


ReadPrincipal = Annotated[Principal, require(Scope.read)]
WritePrincipal = Annotated[Principal, require(Scope.write)]
AdminPrincipal = Annotated[Principal, require(Scope.admin)]
IngestPrincipal = Annotated[Principal, require(Scope.ingest)]
