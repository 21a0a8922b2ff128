"""Errors of the auth domain."""

from retrigger.errors import Conflict, NotFound


class ApiKeyNotFound(NotFound):
    pass


class ApiKeyAlreadyRevoked(Conflict):
    pass
