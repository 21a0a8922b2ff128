"""Errors of the policies domain."""

from retrigger.errors import NotFound


class TemplateNotFound(NotFound):
    pass


class TemplateVersionNotFound(NotFound):
    pass


class PolicyNotFound(NotFound):
    pass


class PolicyVersionNotFound(NotFound):
    pass
