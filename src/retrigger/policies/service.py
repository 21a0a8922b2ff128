"""Saving and reading policies: templates and product policies as immutable versions, bundles
applied as one plan, and the conformance report.

Every save goes through the same planner: validate, resolve against the template version, check
the product's feature schema, compare fingerprints (unchanged saves create no version), diff
against the previous version. A bundle is planned whole and applied only if every document is
valid, so one bad document applies nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.audit import service as audit_service
from retrigger.auth.scopes import Principal
from retrigger.dispatch import connections
from retrigger.errors import Forbidden, InvalidConfig, NotFound
from retrigger.policies.diff import Change, diff
from retrigger.policies.documents import (
    DocumentKind,
    canonical_spec,
    fingerprint,
    validate_document,
    validate_product_policy,
    validate_template,
)
from retrigger.policies.errors import (
    PolicyNotFound,
    PolicyVersionNotFound,
    TemplateNotFound,
    TemplateVersionNotFound,
)
from retrigger.policies.features import check_against_schema
from retrigger.policies.models import PolicyTemplate, PolicyTemplateVersion, PolicyVersion
from retrigger.policies.repository import PolicyVersionRepository, TemplateRepository
from retrigger.policies.resolve import resolve
from retrigger.policies.resources import PlanAction
from retrigger.policies.schemas import ProductPolicy, TemplatedPolicySpec, TemplateSpec
from retrigger.policies.target import Target
from retrigger.products import service as product_service
from retrigger.products.models import Product


@dataclass
class Planned:
    """One document's part of a plan."""

    kind: DocumentKind
    name: str
    action: PlanAction
    from_version: int | None
    to_version: int
    changes: list[Change]
    written: dict[str, Any]
    fingerprint: str
    template: PolicyTemplate | None = None
    template_spec: TemplateSpec | None = None
    product: Product | None = None
    template_ref: tuple[str, int] | None = None
    effective: dict[str, Any] = field(default_factory=dict)


def _written(spec: TemplateSpec | ProductPolicy) -> dict[str, Any]:
    return spec.model_dump(mode="json", exclude_unset=True)


def _prefixed(exc: InvalidConfig, prefix: Sequence[str | int]) -> InvalidConfig:
    errors = [{**e, "loc": [*prefix, *e.get("loc", [])]} for e in exc.errors]
    return InvalidConfig(exc.message, errors=errors)


def _require_org_admin(principal: Principal) -> None:
    if not principal.is_org_admin:
        raise Forbidden("only an org admin key can change policy templates")


# --- planning -------------------------------------------------------------------------------


async def _check_target(
    session: AsyncSession, target: Target | None, product: Product | None, loc: tuple[str, ...]
) -> None:
    """The target's connection exists and the product's team may use it (422 at ``loc``)."""
    if target is not None:
        await connections.check_target(session, name=target.connection, product=product, loc=loc)


async def _plan_template(session: AsyncSession, name: str, spec: TemplateSpec) -> Planned:
    await _check_target(session, spec.target, None, ("target", "connection"))
    repo = TemplateRepository(session)
    template = await repo.get_by_name(name)
    fp = fingerprint(spec)
    new = canonical_spec(spec)
    if template is None:
        return Planned(
            DocumentKind.POLICY_TEMPLATE, name, PlanAction.create, None, 1,
            diff({}, new), _written(spec), fp, template_spec=spec,
        )  # fmt: skip
    latest = await repo.version(template.id, template.latest_version)
    assert latest is not None
    action = PlanAction.unchanged if latest.fingerprint == fp else PlanAction.update
    changes = [] if action is PlanAction.unchanged else diff(_canonical_template(latest), new)
    to_version = latest.version if action is PlanAction.unchanged else latest.version + 1
    return Planned(
        DocumentKind.POLICY_TEMPLATE, name, action, latest.version, to_version, changes,
        _written(spec), fp, template=template, template_spec=spec,
    )  # fmt: skip


def _canonical_template(version: PolicyTemplateVersion) -> dict[str, Any]:
    return canonical_spec(validate_template(version.spec))


async def _template_spec(
    session: AsyncSession, name: str, version: int, pending: Mapping[str, Planned]
) -> TemplateSpec | None:
    planned = pending.get(name)
    if planned is not None and planned.to_version == version and planned.template_spec:
        return planned.template_spec
    repo = TemplateRepository(session)
    template = await repo.get_by_name(name)
    if template is None:
        return None
    stored = await repo.version(template.id, version)
    return validate_template(stored.spec) if stored is not None else None


async def _plan_policy(
    session: AsyncSession,
    product: Product,
    spec: ProductPolicy,
    pending: Mapping[str, Planned],
) -> Planned:
    """Resolve and check a product policy; ``InvalidConfig`` locations are inside ``spec``."""
    template_spec: TemplateSpec | None = None
    ref: tuple[str, int] | None = None
    if isinstance(spec, TemplatedPolicySpec):
        ref = (spec.template.name, spec.template.version)
        template_spec = await _template_spec(session, *ref, pending)
        if template_spec is None:
            raise InvalidConfig(
                f"unknown template {ref[0]}@{ref[1]}",
                errors=[
                    {
                        "loc": ["template"],
                        "msg": f"template {ref[0]}@{ref[1]} does not exist",
                        "type": "unknown_template",
                    }
                ],
            )
    effective = resolve(spec, template_spec)
    where: tuple[str, ...] = ()
    if isinstance(spec, TemplatedPolicySpec):
        overridden = getattr(spec.overrides.target, "connection", None) is not None
        where = ("overrides",) if overridden else ("(effective)",)
    await _check_target(session, effective.policy.target, product, (*where, "target", "connection"))
    kinds = {f["name"]: f["kind"] for f in product.features}
    schema_errors = check_against_schema(effective.policy, kinds)
    if schema_errors:
        raise InvalidConfig(
            f"policy does not fit the feature schema of product '{product.name}'",
            errors=[{**e, "loc": ["(effective)", *e["loc"]]} for e in schema_errors],
        )
    fp = fingerprint(spec)
    latest = await PolicyVersionRepository(session).latest(product.id)
    new = canonical_spec(spec)
    if latest is None:
        action, from_version, to_version = PlanAction.create, None, 1
        changes = diff({}, new)
    elif latest.fingerprint == fp:
        action, from_version, to_version = PlanAction.unchanged, latest.version, latest.version
        changes = []
    else:
        action, from_version, to_version = PlanAction.update, latest.version, latest.version + 1
        changes = diff(canonical_spec(validate_product_policy(latest.spec)), new)
    return Planned(
        DocumentKind.PRODUCT_POLICY, product.name, action, from_version, to_version, changes,
        _written(spec), fp, product=product, template_ref=ref,
        effective=effective.model_dump(mode="json"),
    )  # fmt: skip


# --- executing ------------------------------------------------------------------------------


async def _execute(
    session: AsyncSession, *, principal: Principal, item: Planned, change_reason: str
) -> None:
    if item.action is PlanAction.unchanged:
        return
    if item.kind is DocumentKind.POLICY_TEMPLATE:
        repo = TemplateRepository(session)
        description = item.written.get("description")
        template = item.template
        if template is None:
            template = await repo.add(
                PolicyTemplate(name=item.name, latest_version=1, description=description)
            )
        else:
            template.latest_version = item.to_version
            template.description = description
        await repo.add_version(
            PolicyTemplateVersion(
                template_id=template.id,
                version=item.to_version,
                spec=item.written,
                fingerprint=item.fingerprint,
                change_reason=change_reason,
                created_by=principal.actor,
            )
        )
        entity_type, team_id = "policy_template", None
    else:
        assert item.product is not None
        version = PolicyVersion(
            product_id=item.product.id,
            version=item.to_version,
            template_name=item.template_ref[0] if item.template_ref else None,
            template_version=item.template_ref[1] if item.template_ref else None,
            spec=item.written,
            effective=item.effective,
            fingerprint=item.fingerprint,
            change_reason=change_reason,
            created_by=principal.actor,
        )
        await PolicyVersionRepository(session).add(version)
        entity_type, team_id = "policy", item.product.team_id
    await audit_service.record(
        session,
        principal=principal,
        action="create" if item.action is PlanAction.create else "update",
        entity_type=entity_type,
        entity_name=item.name,
        team_id=team_id,
        diff={
            "version": item.to_version,
            "changes": [c.model_dump(mode="json") for c in item.changes],
        },
        reason=change_reason,
    )


# --- templates ------------------------------------------------------------------------------


async def save_template(
    session: AsyncSession,
    *,
    principal: Principal,
    name: str,
    spec: Mapping[str, Any],
    change_reason: str,
) -> Planned:
    """Save a template; a new immutable version only when the canonical form changed."""
    _require_org_admin(principal)
    try:
        validated = validate_template(spec)
        item = await _plan_template(session, name, validated)
    except InvalidConfig as exc:
        raise _prefixed(exc, ["body", "spec"]) from None
    await _execute(session, principal=principal, item=item, change_reason=change_reason)
    return item


async def get_template_or_raise(session: AsyncSession, *, name: str) -> PolicyTemplate:
    template = await TemplateRepository(session).get_by_name(name)
    if template is None:
        raise TemplateNotFound(f"policy template '{name}' not found")
    return template


async def list_templates(session: AsyncSession) -> Sequence[PolicyTemplate]:
    return await TemplateRepository(session).all()


async def get_template_version(
    session: AsyncSession, *, name: str, version: int | None = None
) -> PolicyTemplateVersion:
    """A version of a template (the latest when ``version`` is None)."""
    template = await get_template_or_raise(session, name=name)
    found = await TemplateRepository(session).version(
        template.id, version if version is not None else template.latest_version
    )
    if found is None:
        raise TemplateVersionNotFound(f"policy template '{name}' has no version {version}")
    return found


async def list_template_versions(
    session: AsyncSession, *, name: str
) -> Sequence[PolicyTemplateVersion]:
    template = await get_template_or_raise(session, name=name)
    return await TemplateRepository(session).versions(template.id)


async def diff_template_versions(
    session: AsyncSession, *, name: str, from_version: int, to_version: int
) -> list[Change]:
    old = await get_template_version(session, name=name, version=from_version)
    new = await get_template_version(session, name=name, version=to_version)
    return diff(_canonical_template(old), _canonical_template(new))


# --- product policies -----------------------------------------------------------------------


async def save_policy(
    session: AsyncSession,
    *,
    principal: Principal,
    product_name: str,
    spec: Mapping[str, Any],
    change_reason: str,
) -> Planned:
    """Save a product's policy; bounds and feature schema are checked before anything is written."""
    product = await product_service.get_visible_or_raise(
        session, principal=principal, name=product_name
    )
    try:
        validated = validate_product_policy(spec)
        item = await _plan_policy(session, product, validated, {})
    except InvalidConfig as exc:
        raise _prefixed(exc, ["body", "spec"]) from None
    await _execute(session, principal=principal, item=item, change_reason=change_reason)
    return item


async def get_policy_version(
    session: AsyncSession, *, principal: Principal, product_name: str, version: int | None = None
) -> tuple[Product, PolicyVersion]:
    """A version of the product's policy (the current one when ``version`` is None)."""
    product = await product_service.get_visible_or_raise(
        session, principal=principal, name=product_name
    )
    repo = PolicyVersionRepository(session)
    if version is None:
        found = await repo.latest(product.id)
        if found is None:
            raise PolicyNotFound(f"product '{product_name}' has no policy yet")
    else:
        found = await repo.version(product.id, version)
        if found is None:
            raise PolicyVersionNotFound(f"product '{product_name}' has no policy version {version}")
    return product, found


async def list_policy_versions(
    session: AsyncSession, *, principal: Principal, product_name: str
) -> Sequence[PolicyVersion]:
    product = await product_service.get_visible_or_raise(
        session, principal=principal, name=product_name
    )
    return await PolicyVersionRepository(session).versions(product.id)


async def diff_policy_versions(
    session: AsyncSession,
    *,
    principal: Principal,
    product_name: str,
    from_version: int,
    to_version: int,
    effective: bool,
) -> list[Change]:
    """Changes between two versions: of what was written, or of the resolved policies."""
    _, old = await get_policy_version(
        session, principal=principal, product_name=product_name, version=from_version
    )
    _, new = await get_policy_version(
        session, principal=principal, product_name=product_name, version=to_version
    )
    if effective:
        return diff(old.effective["policy"], new.effective["policy"])
    return diff(
        canonical_spec(validate_product_policy(old.spec)),
        canonical_spec(validate_product_policy(new.spec)),
    )


async def latest_template_versions(session: AsyncSession) -> dict[str, int]:
    return {t.name: t.latest_version for t in await TemplateRepository(session).all()}


# --- bundles --------------------------------------------------------------------------------


async def apply_bundle(
    session: AsyncSession,
    *,
    principal: Principal,
    documents: Sequence[Mapping[str, Any]],
    change_reason: str,
    dry_run: bool,
) -> list[Planned]:
    """Plan every document, then apply all of them, or nothing if any is invalid."""
    errors: list[dict[str, Any]] = []
    seen: dict[tuple[str, str], int] = {}
    validated: list[tuple[int, Any]] = []
    for index, raw in enumerate(documents):
        try:
            document = validate_document(raw)
        except InvalidConfig as exc:
            errors.extend(_prefixed(exc, ["body", "documents", index]).errors)
            continue
        key = (document.kind.value, document.name)
        if key in seen:
            errors.append(
                {
                    "loc": ["body", "documents", index, "name"],
                    "msg": f"{document.kind.value} '{document.name}' appears twice "
                    f"(also documents[{seen[key]}])",
                    "type": "duplicate_document",
                }
            )
            continue
        seen[key] = index
        validated.append((index, document))

    if any(d.kind is DocumentKind.POLICY_TEMPLATE for _, d in validated):
        _require_org_admin(principal)

    pending: dict[str, Planned] = {}
    plan: list[Planned] = []
    for index, document in validated:
        if document.kind is not DocumentKind.POLICY_TEMPLATE:
            continue
        assert isinstance(document.spec, TemplateSpec)
        try:
            item = await _plan_template(session, document.name, document.spec)
        except InvalidConfig as exc:
            errors.extend(_prefixed(exc, ["body", "documents", index, "spec"]).errors)
            continue
        pending[document.name] = item
        plan.append(item)
    for index, document in validated:
        if document.kind is not DocumentKind.PRODUCT_POLICY:
            continue
        try:
            product = await product_service.get_visible_or_raise(
                session, principal=principal, name=document.name
            )
        except NotFound:
            errors.append(
                {
                    "loc": ["body", "documents", index, "name"],
                    "msg": f"unknown product '{document.name}'",
                    "type": "unknown_product",
                }
            )
            continue
        try:
            plan.append(await _plan_policy(session, product, document.spec, pending))
        except InvalidConfig as exc:
            errors.extend(_prefixed(exc, ["body", "documents", index, "spec"]).errors)

    if errors:
        raise InvalidConfig(
            f"the bundle has {len(errors)} error(s); nothing was applied", errors=errors
        )
    if not dry_run:
        for item in plan:
            await _execute(session, principal=principal, item=item, change_reason=change_reason)
    return plan


# --- conformance ----------------------------------------------------------------------------


async def conformance(session: AsyncSession, *, principal: Principal) -> list[dict[str, Any]]:
    """For every visible product: its template and version, how far behind, what it overrides."""
    products: list[Product] = []
    after: int | None = None
    while True:
        page, after = await product_service.list_(
            session, principal=principal, team=None, after_id=after, limit=500
        )
        products.extend(page)
        if after is None:
            break
    latest = await latest_template_versions(session)
    policies = await PolicyVersionRepository(session).latest_by_product([p.id for p in products])
    rows: list[dict[str, Any]] = []
    for product in sorted(products, key=lambda p: p.name):
        policy = policies.get(product.id)
        row: dict[str, Any] = {
            "product": product.name,
            "team": product.team_name,
            "policy_version": policy.version if policy else None,
            "template": policy.template_name if policy else None,
            "template_version": policy.template_version if policy else None,
            "latest_template_version": None,
            "versions_behind": 0,
            "overrides": {},
            "extra_rules": [],
            "disabled_rules": [],
        }
        if policy is None:
            row["status"] = "no_policy"
        elif policy.template_name is None:
            row["status"] = "standalone"
        else:
            newest = latest.get(policy.template_name, policy.template_version or 0)
            behind = max(newest - (policy.template_version or 0), 0)
            row.update(
                status="behind" if behind else "on_latest",
                latest_template_version=newest,
                versions_behind=behind,
                overrides=policy.spec.get("overrides", {}),
                extra_rules=[r.get("id") for r in policy.spec.get("extra_rules", [])],
                disabled_rules=list(policy.spec.get("disable_rules", [])),
            )
        rows.append(row)
    return rows
