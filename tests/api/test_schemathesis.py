"""Property-based API test: schemathesis drives every operation of the OpenAPI schema in-process.

Zero server errors and zero responses that contradict the schema (status codes, content types,
bodies). The app runs on its own migrated SQLite file with an org admin key.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from retrigger.auth import service as auth_service
from retrigger.config import Settings
from retrigger.db import migrate
from retrigger.db.session import Database, _configure_sqlite
from retrigger.main import create_app

CHECKS = [
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
    content_type_conformance,
]


@pytest.fixture(scope="module")
def fuzz_app(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, str]:
    path: Path = tmp_path_factory.mktemp("fuzz") / "fuzz.db"
    settings = Settings(database_url=f"sqlite+aiosqlite:///{path}", max_body_bytes=64 * 1024)
    # schemathesis calls the ASGI app from its own event loops: no pooled connections
    engine = create_async_engine(settings.database_url, poolclass=NullPool)
    _configure_sqlite(engine, 5000)

    async def prepare() -> str:
        await migrate.upgrade(engine)
        db = Database(engine)
        async with db.session_scope() as session:
            token = await auth_service.ensure_bootstrap_key(session)
            assert token is not None
        async with db.session_scope() as session:
            from retrigger.teams.models import Team

            session.add(Team(name="team-a", description=""))
        return token

    token = asyncio.run(prepare())
    return create_app(settings, database=Database(engine)), token


def test_api_conforms_to_its_schema(fuzz_app: tuple[Any, str]) -> None:
    app, token = fuzz_app
    api_schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    headers = {"Authorization": f"Bearer {token}"}
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        def check(case: Any) -> None:
            case.call_and_validate(headers=headers, checks=CHECKS)

        try:
            check()
        except Exception as exc:  # collect every operation's failure, then report them all
            failures.append(f"{operation.method.upper()} {operation.path}: {exc}")
    assert operations >= 15
    assert not failures, "\n\n".join(failures)
