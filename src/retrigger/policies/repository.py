"""Queries over policy templates, their versions and product policy versions."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select

from retrigger.db.repository import RepositoryBase
from retrigger.policies.models import PolicyTemplate, PolicyTemplateVersion, PolicyVersion


class TemplateRepository(RepositoryBase[PolicyTemplate]):
    model = PolicyTemplate

    async def get_by_name(self, name: str) -> PolicyTemplate | None:
        stmt = select(PolicyTemplate).where(PolicyTemplate.name == name)
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def all(self) -> Sequence[PolicyTemplate]:
        stmt = select(PolicyTemplate).order_by(PolicyTemplate.name)
        return (await self.session.execute(stmt)).scalars().all()

    async def version(self, template_id: int, version: int) -> PolicyTemplateVersion | None:
        stmt = select(PolicyTemplateVersion).where(
            PolicyTemplateVersion.template_id == template_id,
            PolicyTemplateVersion.version == version,
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def versions(self, template_id: int) -> Sequence[PolicyTemplateVersion]:
        stmt = (
            select(PolicyTemplateVersion)
            .where(PolicyTemplateVersion.template_id == template_id)
            .order_by(PolicyTemplateVersion.version.desc())
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def add_version(self, version: PolicyTemplateVersion) -> PolicyTemplateVersion:
        self.session.add(version)
        await self.session.flush()
        return version


class PolicyVersionRepository(RepositoryBase[PolicyVersion]):
    model = PolicyVersion

    async def latest(self, product_id: int) -> PolicyVersion | None:
        stmt = (
            select(PolicyVersion)
            .where(PolicyVersion.product_id == product_id)
            .order_by(PolicyVersion.version.desc())
            .limit(1)
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def version(self, product_id: int, version: int) -> PolicyVersion | None:
        stmt = select(PolicyVersion).where(
            PolicyVersion.product_id == product_id, PolicyVersion.version == version
        )
        return (await self.session.execute(stmt)).scalar_one_or_none()

    async def versions(self, product_id: int) -> Sequence[PolicyVersion]:
        stmt = (
            select(PolicyVersion)
            .where(PolicyVersion.product_id == product_id)
            .order_by(PolicyVersion.version.desc())
        )
        return (await self.session.execute(stmt)).scalars().all()

    async def latest_by_product(self, product_ids: Sequence[int]) -> dict[int, PolicyVersion]:
        """The latest version of each product's policy, in one query."""
        if not product_ids:
            return {}
        newest = (
            select(PolicyVersion.product_id, func.max(PolicyVersion.version).label("v"))
            .where(PolicyVersion.product_id.in_(product_ids))
            .group_by(PolicyVersion.product_id)
            .subquery()
        )
        stmt = select(PolicyVersion).join(
            newest,
            (PolicyVersion.product_id == newest.c.product_id)
            & (PolicyVersion.version == newest.c.v),
        )
        return {row.product_id: row for row in (await self.session.execute(stmt)).scalars()}
