"""In-process wake-ups: a run committed in this process is dispatched at once, not at the
dispatcher's next tick (``RETRIGGER_DISPATCH_INTERVAL_SECONDS``).

``runs.create_for_decision`` calls :func:`after_commit` on the creating session; once that
transaction commits, every worker of this process that subscribed (:func:`subscribe`) is woken.
A rolled back transaction wakes nobody. Other processes find the run at their next tick.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

_PENDING = "retrigger.wake_pending"  # this transaction created a run
_LISTENING = "retrigger.wake_listening"  # the session's commit/rollback listeners are set
_listeners: set[Callable[[], None]] = set()


def subscribe(listener: Callable[[], None]) -> None:
    _listeners.add(listener)


def unsubscribe(listener: Callable[[], None]) -> None:
    _listeners.discard(listener)


def after_commit(session: AsyncSession) -> None:
    """Wake this process's dispatchers when ``session``'s transaction commits."""
    sync = session.sync_session
    sync.info[_PENDING] = True
    if not sync.info.get(_LISTENING):
        sync.info[_LISTENING] = True
        event.listen(sync, "after_commit", _committed)
        event.listen(sync, "after_soft_rollback", _rolled_back)


def _committed(sync_session: Any) -> None:
    if sync_session.info.pop(_PENDING, False):
        for listener in list(_listeners):
            listener()


def _rolled_back(sync_session: Any, previous_transaction: Any) -> None:
    sync_session.info.pop(_PENDING, None)
