"""Errors of the decisions domain."""

from retrigger.errors import Conflict, NotFound


class DecisionNotFound(NotFound):
    pass


class NoPolicy(Conflict):
    """The product cannot be evaluated before it has a policy."""
