"""Errors of the dispatch domain: connections and runs."""

from retrigger.errors import Conflict, InvalidConfig, NotFound


class ConnectionNotFound(NotFound):
    pass


class ConnectionNameTaken(Conflict):
    pass


class ConnectionInUse(Conflict):
    """A connection that runs refer to cannot be deleted (their history would lose it)."""


class RunNotFound(NotFound):
    pass


class RunStateConflict(Conflict):
    """The run is not in a state the requested action applies to."""


class ActiveRunExists(Conflict):
    """The product already has an active run; the database allows one."""


class NoTarget(InvalidConfig):
    """The product's policy names no connection to launch retraining on."""
