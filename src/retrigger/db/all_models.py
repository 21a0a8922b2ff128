"""Imports every ORM model so Alembic and the tests see one complete metadata."""

from retrigger.audit.models import AuditEvent
from retrigger.auth.models import ApiKey
from retrigger.db.base import Base
from retrigger.policies.models import PolicyTemplate, PolicyTemplateVersion, PolicyVersion
from retrigger.products.models import Product
from retrigger.teams.models import Team

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Base",
    "PolicyTemplate",
    "PolicyTemplateVersion",
    "PolicyVersion",
    "Product",
    "Team",
]
