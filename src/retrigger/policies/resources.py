"""HTTP request and response models of the policies API (the policy documents themselves are in
``schemas.py``; bodies carry them as plain JSON so errors can be located inside the document)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import Field

from retrigger.policies.diff import Change
from retrigger.schemas import InputSchema, Schema

Reason = Annotated[
    str,
    Field(
        min_length=3,
        max_length=2000,
        description="Why this change: kept in the version and the audit log.",
        examples=["Tighten drift alpha after the Q3 backtest"],
    ),
]


class TemplateSave(InputSchema):
    spec: dict[str, Any] = Field(
        description="The template document's `spec` (see docs/policies.md)."
    )
    change_reason: Reason


class PolicySave(InputSchema):
    spec: dict[str, Any] = Field(
        description="The product policy: `template: name@version` plus `overrides`, or a "
        "standalone policy with its own `rules`."
    )
    change_reason: Reason


class SaveResult(StrEnum):
    created = "created"
    updated = "updated"
    unchanged = "unchanged"


class TemplateSummary(Schema):
    name: str
    latest_version: int
    description: str | None
    updated_at: datetime


class TemplateVersionRead(Schema):
    name: str
    version: int
    spec: dict[str, Any] = Field(description="As written by its author.")
    fingerprint: str = Field(description="SHA-256 of the canonical form.")
    change_reason: str
    created_by: str
    created_at: datetime


class PolicyVersionRead(Schema):
    product: str
    version: int
    template: str | None = Field(None, description="`name@version` the policy inherits, if any.")
    latest_template_version: int | None = None
    spec: dict[str, Any] = Field(description="As written by the product team.")
    effective: dict[str, Any] = Field(
        description="`policy` (template + overrides resolved), `provenance` of every value "
        "(`template:name@v`, `override`, `policy`, `default`), `disabled_rules`."
    )
    fingerprint: str
    change_reason: str
    created_by: str
    created_at: datetime


class VersionSummary(Schema):
    version: int
    fingerprint: str
    change_reason: str
    created_by: str
    created_at: datetime


class Saved(Schema):
    result: SaveResult
    version: int
    changes: list[Change] = Field(description="What changed against the previous version.")


class DiffRead(Schema):
    from_version: int
    to_version: int
    changes: list[Change]


class ApplyRequest(InputSchema):
    documents: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=1000,
        description="Policy documents (`api_version`, `kind`, `name`, `spec`), as in policy files.",
    )
    change_reason: Reason


class PlanAction(StrEnum):
    create = "create"
    update = "update"
    unchanged = "unchanged"


class PlanItem(Schema):
    kind: str
    name: str
    action: PlanAction
    from_version: int | None
    to_version: int
    changes: list[Change]


class ApplyPlan(Schema):
    dry_run: bool
    applied: bool
    items: list[PlanItem]


class ConformanceStatus(StrEnum):
    on_latest = "on_latest"
    behind = "behind"
    standalone = "standalone"
    no_policy = "no_policy"


class ConformanceRow(Schema):
    product: str
    team: str
    status: ConformanceStatus
    policy_version: int | None
    template: str | None
    template_version: int | None
    latest_template_version: int | None
    versions_behind: int
    overrides: dict[str, Any] = Field(description="What the product overrides, as written.")
    extra_rules: list[str]
    disabled_rules: list[str]


class ConformanceReport(Schema):
    products: list[ConformanceRow]
    summary: dict[str, int] = Field(description="Number of products per status.")
