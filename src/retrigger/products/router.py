"""``/v1/products``: the ML products, their owner team and feature schema."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from retrigger import metrics
from retrigger.api.deps import ReadPrincipal, SessionDep, WritePrincipal
from retrigger.api.problems import responses
from retrigger.products import service as product_service
from retrigger.products.models import Product
from retrigger.products.schemas import ProductCreate, ProductRead, ProductUpdate
from retrigger.schemas import Page, Slug, decode_cursor, encode_cursor

router = APIRouter(prefix="/products", tags=["products"])

_EXAMPLE = {
    "name": "fraud-scorer",
    "team": "risk-ml",
    "description": "Card fraud score served to the payment gateway",
    "tags": ["tier-1"],
    "features": [
        {"name": "amount", "kind": "numeric", "min": 0},
        {"name": "country", "kind": "categorical"},
        {"name": "is_new_device", "kind": "boolean", "importance": 2.0},
    ],
}


@router.get("", response_model=Page[ProductRead], responses=responses(401, 403, 422))
async def list_products(
    session: SessionDep,
    principal: ReadPrincipal,
    team: Annotated[str | None, Query(max_length=63, description="Only this team's.")] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> Page[ProductRead]:
    """List the products visible to the key, newest first."""
    rows, next_id = await product_service.list_(
        session, principal=principal, team=team, after_id=decode_cursor(cursor), limit=limit
    )
    return Page(
        items=[ProductRead.model_validate(r) for r in rows], next_cursor=encode_cursor(next_id)
    )


@router.post(
    "",
    status_code=201,
    response_model=ProductRead,
    responses=responses(400, 401, 403, 409, 413, 415, 422),
    openapi_extra={
        "requestBody": {"content": {"application/json": {"example": _EXAMPLE}}},
    },
)
async def create_product(
    body: ProductCreate, session: SessionDep, principal: WritePrincipal
) -> Product:
    """Register an ML product with its feature schema."""
    return await product_service.create(session, principal=principal, product_in=body)


@router.get("/{product}", response_model=ProductRead, responses=responses(401, 403, 404, 422))
async def get_product(product: Slug, session: SessionDep, principal: ReadPrincipal) -> Product:
    """Read one product."""
    return await product_service.get_visible_or_raise(session, principal=principal, name=product)


@router.patch(
    "/{product}",
    response_model=ProductRead,
    responses=responses(400, 401, 403, 404, 413, 415, 422),
)
async def update_product(
    product: Slug, body: ProductUpdate, session: SessionDep, principal: WritePrincipal
) -> Product:
    """Change description, tags or the feature schema (fields left out stay as they are)."""
    return await product_service.update(session, principal=principal, name=product, product_in=body)


@router.delete("/{product}", status_code=204, responses=responses(401, 403, 404, 422))
async def delete_product(product: Slug, session: SessionDep, principal: WritePrincipal) -> Response:
    """Delete a product."""
    await product_service.delete_(session, principal=principal, name=product)
    metrics.forget_product(product)
    return Response(status_code=204)
