"""Queries over references and their feature profiles."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, update

from retrigger.db.repository import RepositoryBase
from retrigger.products.models import Product
from retrigger.references.models import Reference, ReferenceFeature


class ReferenceRepository(RepositoryBase[Reference]):
    model = Reference

    async def lock_product(self, product_id: int) -> None:
        """Serialize reference changes of one product until the transaction ends.

        PostgreSQL: ``FOR NO KEY UPDATE`` on the product row, which two uploads cannot both
        hold but which leaves the key-share locks of inserts referencing the product (signals,
        decisions) alone. SQLite: a no-op, its write transactions are already serialized.
        """
        stmt = select(Product.id).where(Product.id == product_id).with_for_update(key_share=True)
        await self.session.execute(stmt)

    async def next_version(self, product_id: int) -> int:
        stmt = select(func.max(Reference.version)).where(Reference.product_id == product_id)
        return int((await self.session.execute(stmt)).scalar() or 0) + 1

    async def get_version(self, product_id: int, version: int) -> Reference | None:
        stmt = select(Reference).where(
            Reference.product_id == product_id, Reference.version == version
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def active(self, product_id: int) -> Reference | None:
        stmt = select(Reference).where(Reference.product_id == product_id, Reference.active)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def list_for(self, product_id: int) -> Sequence[Reference]:
        stmt = (
            select(Reference)
            .where(Reference.product_id == product_id)
            .order_by(Reference.version.desc())
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def deactivate_all(self, product_id: int) -> None:
        stmt = (
            update(Reference)
            .where(Reference.product_id == product_id, Reference.active)
            .values(active=False)
        )
        await self.session.execute(stmt)

    async def features(
        self, reference_id: int, names: Sequence[str] | None = None
    ) -> Sequence[ReferenceFeature]:
        stmt = select(ReferenceFeature).where(ReferenceFeature.reference_id == reference_id)
        if names is not None:
            stmt = stmt.where(ReferenceFeature.feature.in_(list(names)))
        return (await self.session.execute(stmt.order_by(ReferenceFeature.feature))).scalars().all()

    async def add_features(self, rows: Sequence[ReferenceFeature]) -> None:
        self.session.add_all(rows)
        await self.session.flush()
