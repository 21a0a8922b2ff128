"""Errors of the references domain."""

from retrigger.errors import NotFound


class ReferenceNotFound(NotFound):
    pass
