"""Errors of the products domain."""

from retrigger.errors import Conflict, NotFound


class ProductNotFound(NotFound):
    pass


class ProductNameTaken(Conflict):
    pass
