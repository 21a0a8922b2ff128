"""Run states and the transitions allowed between them: a run only ever moves forward."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class RunStatus(StrEnum):
    PENDING = "pending"
    AWAITING_APPROVAL = "awaiting_approval"
    SUBMITTED = "submitted"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    REJECTED = "rejected"
    CANCELLED = "cancelled"

    @property
    def active(self) -> bool:
        return self in ACTIVE

    @property
    def terminal(self) -> bool:
        return not self.active


ACTIVE: Final = frozenset(
    {RunStatus.PENDING, RunStatus.AWAITING_APPROVAL, RunStatus.SUBMITTED, RunStatus.RUNNING}
)

ALLOWED: Final[dict[RunStatus, frozenset[RunStatus]]] = {
    RunStatus.AWAITING_APPROVAL: frozenset(
        {RunStatus.PENDING, RunStatus.REJECTED, RunStatus.CANCELLED}
    ),
    RunStatus.PENDING: frozenset({RunStatus.SUBMITTED, RunStatus.FAILED, RunStatus.CANCELLED}),
    # a quick pipeline may be seen finished at the first poll: submitted may skip running
    RunStatus.SUBMITTED: frozenset(
        {RunStatus.RUNNING, RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
    ),
    RunStatus.RUNNING: frozenset({RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}),
    RunStatus.SUCCEEDED: frozenset(),
    RunStatus.FAILED: frozenset(),
    RunStatus.REJECTED: frozenset(),
    RunStatus.CANCELLED: frozenset(),
}


def can_move(current: RunStatus, target: RunStatus) -> bool:
    """Whether ``current -> target`` is a forward transition."""
    return target in ALLOWED[current]
