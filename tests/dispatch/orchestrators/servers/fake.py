"""The ``fake`` kind's server: nothing to serve, the adapter keeps its own ledger in process."""

from __future__ import annotations

import httpx

from retrigger.dispatch.orchestrators.base import ConnectionConfig, RunState
from retrigger.dispatch.orchestrators.fake import FakeOptions, FakeOrchestrator
from tests.dispatch.orchestrators.servers import unique_name


class FakeServer:
    """Counts the fake adapter's ledger entries of one connection; it never sees a request."""

    kind = "fake"
    pipeline = "train-fraud-scorer"
    # No HTTP to break, and the run's end is computed from the clock, not driven from outside.
    SKIPS = frozenset({"http", "finish"})

    def __init__(self) -> None:
        self.connection = ConnectionConfig(
            name=unique_name(self.kind),
            kind=self.kind,
            base_url="http://fake.invalid",
            options=FakeOptions(duration_seconds=3600),
        )

    @property
    def launched(self) -> int:
        return sum(1 for name, _ in FakeOrchestrator.ledger if name == self.connection.name)

    def handler(self, request: httpx.Request) -> httpx.Response:
        """The fake adapter makes no HTTP call; any request is a bug in it."""
        raise AssertionError(f"unexpected request {request.method} {request.url}")

    def fail_next(self, status: int, times: int = 1, headers: dict[str, str] | None = None) -> None:
        raise NotImplementedError("the fake kind makes no HTTP call")

    def finish(self, external_id: str, state: RunState) -> None:
        raise NotImplementedError("fake runs end by the clock (duration_seconds)")


def make_server() -> FakeServer:
    return FakeServer()
