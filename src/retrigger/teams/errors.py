"""Errors of the teams domain."""

from retrigger.errors import Conflict, NotFound


class TeamNotFound(NotFound):
    pass


class TeamNameTaken(Conflict):
    pass


class TeamInUse(Conflict):
    pass
