"""Errors of the signals domain."""

from retrigger.errors import Conflict, InvalidConfig

MAX_REPORTED_ERRORS = 50
"""A bad batch names at most this many offending fields (the first ones found)."""


class SignalRejected(InvalidConfig):
    """The batch is well-formed JSON but a value breaks the product's schema or the clock."""


class IdempotencyKeyReused(Conflict):
    """The idempotency key was used before for a different request body."""
