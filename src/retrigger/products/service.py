"""Products: visible to their team's keys and to org-wide keys; invisible (404) to others."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.audit import service as audit_service
from retrigger.auth.scopes import Principal
from retrigger.errors import InvalidConfig
from retrigger.products.errors import ProductNameTaken, ProductNotFound
from retrigger.products.models import Product
from retrigger.products.repository import ProductRepository
from retrigger.products.schemas import ProductCreate, ProductUpdate
from retrigger.teams import service as team_service
from retrigger.teams.errors import TeamNotFound
from retrigger.teams.models import Team


async def get_visible_or_raise(
    session: AsyncSession, *, principal: Principal, name: str
) -> Product:
    """The product, or 404 alike for "does not exist" and "belongs to another team"."""
    product = await ProductRepository(session).get_by_name(name)
    if product is None or not principal.can_see_team(product.team_id):
        raise ProductNotFound(f"product '{name}' not found")
    return product


async def list_(
    session: AsyncSession,
    *,
    principal: Principal,
    team: str | None,
    after_id: int | None,
    limit: int,
) -> tuple[Sequence[Product], int | None]:
    return await ProductRepository(session).list_(
        team_id=None if principal.is_org_wide else principal.team_id,
        team_name=team,
        after_id=after_id,
        limit=limit,
    )


def _snapshot(product: Product) -> dict[str, Any]:
    return {
        "description": product.description,
        "tags": list(product.tags),
        "features": list(product.features),
    }


async def create(
    session: AsyncSession, *, principal: Principal, product_in: ProductCreate
) -> Product:
    if product_in.team is None:
        if principal.team_id is None:
            raise InvalidConfig(
                "team is required when the key is org-wide",
                errors=[{"loc": ["body", "team"], "msg": "field required", "type": "missing"}],
            )
        team = await session.get(Team, principal.team_id)
        if team is None:
            raise InvalidConfig("the key's team no longer exists")
    else:
        try:
            team = await team_service.get_visible_or_raise(
                session, principal=principal, name=product_in.team
            )
        except TeamNotFound:
            raise InvalidConfig(
                f"unknown team '{product_in.team}'",
                errors=[{"loc": ["body", "team"], "msg": "unknown team", "type": "value_error"}],
            ) from None
    repo = ProductRepository(session)
    if await repo.get_by_name(product_in.name) is not None:
        raise ProductNameTaken(
            f"product '{product_in.name}' already exists",
            errors=[{"loc": ["body", "name"], "msg": "already exists", "type": "conflict"}],
        )
    product = Product(
        name=product_in.name,
        team_id=team.id,
        team=team,
        description=product_in.description,
        tags=list(product_in.tags),
        features=[f.model_dump(mode="json", exclude_none=True) for f in product_in.features],
    )
    await repo.add(product)
    await audit_service.record(
        session,
        principal=principal,
        action="create",
        entity_type="product",
        entity_name=product.name,
        team_id=team.id,
        diff={"team": product.team_name, **_snapshot(product)},
    )
    return product


async def update(
    session: AsyncSession, *, principal: Principal, name: str, product_in: ProductUpdate
) -> Product:
    product = await get_visible_or_raise(session, principal=principal, name=name)
    before = _snapshot(product)
    fields = product_in.model_fields_set
    if "description" in fields and product_in.description is not None:
        product.description = product_in.description
    if "tags" in fields and product_in.tags is not None:
        product.tags = list(product_in.tags)
    if "features" in fields and product_in.features is not None:
        product.features = [
            f.model_dump(mode="json", exclude_none=True) for f in product_in.features
        ]
    diff = audit_service.field_diff(before, _snapshot(product))
    if diff:
        await session.flush()
        await session.refresh(product, attribute_names=["updated_at"])
        await audit_service.record(
            session,
            principal=principal,
            action="update",
            entity_type="product",
            entity_name=product.name,
            team_id=product.team_id,
            diff=diff,
        )
    return product


async def delete_(session: AsyncSession, *, principal: Principal, name: str) -> None:
    product = await get_visible_or_raise(session, principal=principal, name=name)
    await ProductRepository(session).delete(product)
    await audit_service.record(
        session,
        principal=principal,
        action="delete",
        entity_type="product",
        entity_name=name,
        team_id=product.team_id,
        diff={"before": _snapshot(product)},
    )


async def names_by_id(
    session: AsyncSession, ids: set[int], principal: Principal | None = None
) -> dict[int, str]:
    """Product names by id (only those the principal may see, when one is given)."""
    rows = await ProductRepository(session).by_ids(sorted(ids))
    return {p.id: p.name for p in rows if principal is None or principal.can_see_team(p.team_id)}
