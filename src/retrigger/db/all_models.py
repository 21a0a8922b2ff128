"""Imports every ORM model so Alembic and the tests see one complete metadata."""

from retrigger.audit.models import AuditEvent
from retrigger.auth.models import ApiKey
from retrigger.db.base import Base
from retrigger.decisions.models import Decision, ProductState
from retrigger.dispatch.models import Connection, Run, RunAttempt, RunTransition
from retrigger.policies.models import PolicyTemplate, PolicyTemplateVersion, PolicyVersion
from retrigger.products.models import Product
from retrigger.references.models import Reference, ReferenceFeature
from retrigger.signals.models import (
    Alert,
    IngestKey,
    MetricPoint,
    Outcome,
    SampleBatch,
    SampleColumn,
)
from retrigger.teams.models import Team

__all__ = [
    "Alert",
    "ApiKey",
    "AuditEvent",
    "Base",
    "Connection",
    "Decision",
    "IngestKey",
    "MetricPoint",
    "Outcome",
    "PolicyTemplate",
    "PolicyTemplateVersion",
    "PolicyVersion",
    "Product",
    "ProductState",
    "Reference",
    "ReferenceFeature",
    "Run",
    "RunAttempt",
    "RunTransition",
    "SampleBatch",
    "SampleColumn",
    "Team",
]
