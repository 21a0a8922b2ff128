"""The ``adapter`` fixture: the adapter wired to the ``server`` a test module provides; every
test starts without the process-wide Airflow token cache."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from retrigger.dispatch.orchestrators.airflow import AirflowJWTAuth
from retrigger.dispatch.orchestrators.base import Orchestrator
from tests.dispatch.orchestrators.servers import Server, connected


@pytest_asyncio.fixture(loop_scope="session")
async def adapter(server: Server) -> AsyncIterator[Orchestrator]:
    """The adapter of ``server.kind`` wired to ``server``."""
    async with connected(server) as orchestrator:
        yield orchestrator


@pytest.fixture(autouse=True)
def _fresh_airflow_tokens() -> Iterator[None]:
    AirflowJWTAuth._tokens.clear()
    yield
    AirflowJWTAuth._tokens.clear()
