"""``/v1/products/{product}/references``: upload, list, read and activate baselines."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from retrigger.api.deps import ReadPrincipal, SessionDep, WritePrincipal
from retrigger.api.problems import responses
from retrigger.products import service as product_service
from retrigger.references import service as reference_service
from retrigger.references.models import Reference
from retrigger.references.schemas import (
    ActivateRequest,
    ReferenceCreate,
    ReferenceFeatureRead,
    ReferenceRead,
)
from retrigger.schemas import Slug

router = APIRouter(prefix="/products/{product}/references", tags=["references"])

VersionNo = Annotated[int, Path(ge=1, le=2**31 - 1)]

_EXAMPLE = {
    "columns": {"amount": [12.5, 80.0, 3.2], "country": ["DE", "FR", "DE"]},
    "model_version": "2026-11-01",
    "trained_at": "2026-11-01T00:00:00Z",
    "baseline_metrics": {"accuracy": 0.93},
}


async def _read(session: SessionDep, reference: Reference) -> ReferenceRead:
    read = ReferenceRead.model_validate(reference)
    read.features = [
        ReferenceFeatureRead.model_validate(f)
        for f in await reference_service.features(session, reference=reference)
    ]
    return read


@router.post(
    "",
    status_code=201,
    response_model=ReferenceRead,
    responses=responses(400, 401, 403, 404, 409, 413, 415, 422),
    openapi_extra={"requestBody": {"content": {"application/json": {"example": _EXAMPLE}}}},
)
async def create_reference(
    product: Slug, body: ReferenceCreate, session: SessionDep, principal: WritePrincipal
) -> ReferenceRead:
    """Upload a baseline (raw rows, columns, or per-feature histograms/quantiles/counts)."""
    reference = await reference_service.create(
        session, principal=principal, product_name=product, body=body
    )
    return await _read(session, reference)


@router.get("", response_model=list[ReferenceRead], responses=responses(401, 403, 404, 422))
async def list_references(
    product: Slug, session: SessionDep, principal: ReadPrincipal
) -> list[ReferenceRead]:
    """Every reference version of the product, newest first (without feature summaries)."""
    rows = await reference_service.list_(session, principal=principal, product_name=product)
    return [ReferenceRead.model_validate(r) for r in rows]


@router.get("/{version}", response_model=ReferenceRead, responses=responses(401, 403, 404, 422))
async def get_reference(
    product: Slug, version: VersionNo, session: SessionDep, principal: ReadPrincipal
) -> ReferenceRead:
    """One reference version with a summary of each feature's profile."""
    found = await product_service.get_visible_or_raise(session, principal=principal, name=product)
    reference = await reference_service.get_or_raise(session, product=found, version=version)
    return await _read(session, reference)


@router.post(
    "/{version}:activate",
    response_model=ReferenceRead,
    responses=responses(400, 401, 403, 404, 409, 413, 415, 422),
)
async def activate_reference(
    product: Slug,
    version: VersionNo,
    body: ActivateRequest,
    session: SessionDep,
    principal: WritePrincipal,
) -> ReferenceRead:
    """Make this version the product's active baseline (audited with the reason)."""
    reference = await reference_service.activate(
        session, principal=principal, product_name=product, version=version, reason=body.reason
    )
    return await _read(session, reference)
