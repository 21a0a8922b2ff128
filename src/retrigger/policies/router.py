"""Policy routes: org templates, product policies, bundles applied as code, conformance."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query

from retrigger.api.deps import ReadPrincipal, SessionDep, WritePrincipal
from retrigger.api.problems import responses
from retrigger.policies import service as policy_service
from retrigger.policies.models import PolicyTemplateVersion, PolicyVersion
from retrigger.policies.resources import (
    ApplyPlan,
    ApplyRequest,
    ConformanceReport,
    ConformanceRow,
    DiffRead,
    PlanItem,
    PolicySave,
    PolicyVersionRead,
    Saved,
    SaveResult,
    TemplateSave,
    TemplateSummary,
    TemplateVersionRead,
    VersionSummary,
)
from retrigger.schemas import Slug

templates_router = APIRouter(prefix="/policy-templates", tags=["policies"])
product_policy_router = APIRouter(prefix="/products/{product}/policy", tags=["policies"])
bundles_router = APIRouter(tags=["policies"])

TemplateName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
VersionNo = Annotated[int, Path(ge=1, le=2**31 - 1)]
FromVersion = Annotated[int, Query(alias="from", ge=1, le=2**31 - 1)]
ToVersion = Annotated[int, Query(alias="to", ge=1, le=2**31 - 1)]


def _saved(item: policy_service.Planned) -> Saved:
    result = {
        "create": SaveResult.created,
        "update": SaveResult.updated,
        "unchanged": SaveResult.unchanged,
    }[item.action.value]
    return Saved(result=result, version=item.to_version, changes=item.changes)


def _template_read(version: PolicyTemplateVersion, name: str) -> TemplateVersionRead:
    return TemplateVersionRead(
        name=name,
        version=version.version,
        spec=version.spec,
        fingerprint=version.fingerprint,
        change_reason=version.change_reason,
        created_by=version.created_by,
        created_at=version.created_at,
    )


def _policy_read(product: str, version: PolicyVersion, latest: int | None) -> PolicyVersionRead:
    return PolicyVersionRead(
        product=product,
        version=version.version,
        template=(
            f"{version.template_name}@{version.template_version}" if version.template_name else None
        ),
        latest_template_version=latest,
        spec=version.spec,
        effective=version.effective,
        fingerprint=version.fingerprint,
        change_reason=version.change_reason,
        created_by=version.created_by,
        created_at=version.created_at,
    )


# --- templates ------------------------------------------------------------------------------


@templates_router.get("", response_model=list[TemplateSummary], responses=responses(401, 403))
async def list_policy_templates(session: SessionDep, principal: ReadPrincipal) -> Any:
    """The organization's standard criteria: every template with its latest version."""
    return await policy_service.list_templates(session)


@templates_router.get(
    "/{name}", response_model=TemplateVersionRead, responses=responses(401, 403, 404, 422)
)
async def get_policy_template(
    name: TemplateName, session: SessionDep, principal: ReadPrincipal
) -> TemplateVersionRead:
    """The latest version of a template."""
    version = await policy_service.get_template_version(session, name=name)
    return _template_read(version, name)


@templates_router.put(
    "/{name}", response_model=Saved, responses=responses(400, 401, 403, 409, 413, 415, 422)
)
async def save_policy_template(
    name: TemplateName, body: TemplateSave, session: SessionDep, principal: WritePrincipal
) -> Saved:
    """Save a template (org admins). A new immutable version only if the content changed."""
    item = await policy_service.save_template(
        session, principal=principal, name=name, spec=body.spec, change_reason=body.change_reason
    )
    return _saved(item)


@templates_router.get(
    "/{name}/versions",
    response_model=list[VersionSummary],
    responses=responses(401, 403, 404, 422),
)
async def list_policy_template_versions(
    name: TemplateName, session: SessionDep, principal: ReadPrincipal
) -> Any:
    """Every version of a template, newest first."""
    return await policy_service.list_template_versions(session, name=name)


@templates_router.get(
    "/{name}/versions/{version}",
    response_model=TemplateVersionRead,
    responses=responses(401, 403, 404, 422),
)
async def get_policy_template_version(
    name: TemplateName, version: VersionNo, session: SessionDep, principal: ReadPrincipal
) -> TemplateVersionRead:
    """One version of a template, as written."""
    found = await policy_service.get_template_version(session, name=name, version=version)
    return _template_read(found, name)


@templates_router.get(
    "/{name}/diff", response_model=DiffRead, responses=responses(401, 403, 404, 422)
)
async def diff_policy_template(
    name: TemplateName,
    from_version: FromVersion,
    to_version: ToVersion,
    session: SessionDep,
    principal: ReadPrincipal,
) -> DiffRead:
    """Structural diff between two versions of a template (rules matched by id)."""
    changes = await policy_service.diff_template_versions(
        session, name=name, from_version=from_version, to_version=to_version
    )
    return DiffRead(from_version=from_version, to_version=to_version, changes=changes)


# --- product policies -----------------------------------------------------------------------


@product_policy_router.get(
    "", response_model=PolicyVersionRead, responses=responses(401, 403, 404, 422)
)
async def get_product_policy(
    product: Slug, session: SessionDep, principal: ReadPrincipal
) -> PolicyVersionRead:
    """The product's current policy: as written, and effective with where each value came from."""
    _, version = await policy_service.get_policy_version(
        session, principal=principal, product_name=product
    )
    latest = (await policy_service.latest_template_versions(session)).get(
        version.template_name or ""
    )
    return _policy_read(product, version, latest)


@product_policy_router.put(
    "", response_model=Saved, responses=responses(400, 401, 403, 404, 409, 413, 415, 422)
)
async def save_product_policy(
    product: Slug, body: PolicySave, session: SessionDep, principal: WritePrincipal
) -> Saved:
    """Save the product's policy as a new version (bounds and feature schema checked first)."""
    item = await policy_service.save_policy(
        session,
        principal=principal,
        product_name=product,
        spec=body.spec,
        change_reason=body.change_reason,
    )
    return _saved(item)


@product_policy_router.get(
    "/versions", response_model=list[VersionSummary], responses=responses(401, 403, 404, 422)
)
async def list_product_policy_versions(
    product: Slug, session: SessionDep, principal: ReadPrincipal
) -> Any:
    """Every version of the product's policy, newest first."""
    return await policy_service.list_policy_versions(
        session, principal=principal, product_name=product
    )


@product_policy_router.get(
    "/versions/{version}",
    response_model=PolicyVersionRead,
    responses=responses(401, 403, 404, 422),
)
async def get_product_policy_version(
    product: Slug, version: VersionNo, session: SessionDep, principal: ReadPrincipal
) -> PolicyVersionRead:
    """One version of the product's policy."""
    _, found = await policy_service.get_policy_version(
        session, principal=principal, product_name=product, version=version
    )
    return _policy_read(product, found, None)


@product_policy_router.get(
    "/diff", response_model=DiffRead, responses=responses(401, 403, 404, 422)
)
async def diff_product_policy(
    product: Slug,
    from_version: FromVersion,
    to_version: ToVersion,
    session: SessionDep,
    principal: ReadPrincipal,
    effective: Annotated[
        bool, Query(description="Diff the resolved policies instead of what was written.")
    ] = False,
) -> DiffRead:
    """Structural diff between two versions of the product's policy."""
    changes = await policy_service.diff_policy_versions(
        session,
        principal=principal,
        product_name=product,
        from_version=from_version,
        to_version=to_version,
        effective=effective,
    )
    return DiffRead(from_version=from_version, to_version=to_version, changes=changes)


# --- bundles and conformance ----------------------------------------------------------------


@bundles_router.post(
    "/policies:apply",
    response_model=ApplyPlan,
    responses=responses(400, 401, 403, 409, 413, 415, 422),
)
async def apply_policies(
    body: ApplyRequest,
    session: SessionDep,
    principal: WritePrincipal,
    dry_run: Annotated[bool, Query(description="Plan only; change nothing.")] = False,
) -> ApplyPlan:
    """Apply a bundle of policy documents (policies as code): all of it, or nothing on error.

    Applying the same bundle twice changes nothing and creates no version.
    """
    plan = await policy_service.apply_bundle(
        session,
        principal=principal,
        documents=body.documents,
        change_reason=body.change_reason,
        dry_run=dry_run,
    )
    items = [
        PlanItem(
            kind=item.kind.value,
            name=item.name,
            action=item.action,
            from_version=item.from_version,
            to_version=item.to_version,
            changes=item.changes,
        )
        for item in plan
    ]
    return ApplyPlan(dry_run=dry_run, applied=not dry_run, items=items)


@bundles_router.get(
    "/policies:conformance", response_model=ConformanceReport, responses=responses(401, 403)
)
async def policy_conformance(session: SessionDep, principal: ReadPrincipal) -> ConformanceReport:
    """Who deviates from the standard: each product's template, version, lag and overrides."""
    rows = [
        ConformanceRow.model_validate(r)
        for r in await policy_service.conformance(session, principal=principal)
    ]
    summary: dict[str, int] = {}
    for row in rows:
        summary[row.status.value] = summary.get(row.status.value, 0) + 1
    return ConformanceReport(products=rows, summary=summary)
