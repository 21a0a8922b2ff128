"""References: upload a baseline (raw or profiled), profile it once, version it, activate it.

Profiles are built off the event loop (they sort up to millions of values) and stored as the
statistics engine's compact bytes. References are immutable, so decoded profiles are cached per
process by reference id.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import anyio
import numpy as np
from sqlalchemy.ext.asyncio import AsyncSession

from retrigger.audit import service as audit_service
from retrigger.auth.scopes import Principal
from retrigger.db.types import utcnow
from retrigger.errors import InvalidConfig, InvalidSample
from retrigger.products import service as product_service
from retrigger.products.models import Product
from retrigger.references.errors import ReferenceNotFound
from retrigger.references.models import Reference, ReferenceFeature
from retrigger.references.repository import ReferenceRepository
from retrigger.references.schemas import MAX_REFERENCE_ROWS, ProfileIn, ReferenceCreate
from retrigger.schemas import NUL, format_loc
from retrigger.stats.profiles import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    ProfileOptions,
    build_profile,
    categorical_profile_from_counts,
    numeric_profile_from_histogram,
    numeric_profile_from_quantiles,
    profile_from_bytes,
    profile_to_bytes,
)

# sorted values up to 100k per feature (800 KB), a ~29 KB quantile sketch beyond: the sketch's
# KS error stays below 1e-4 (docs/statistics.md) and rows stay small enough to load per evaluation
PROFILE_OPTIONS = ProfileOptions(max_values=100_000)


def _problem(loc: Sequence[str | int], msg: str, type_: str = "value_error") -> dict[str, Any]:
    return {"loc": ["body", *loc], "msg": msg, "type": type_}


def _columns_from_rows(
    rows: Sequence[Mapping[str, Any]], kinds: Mapping[str, str]
) -> dict[str, list[Any]]:
    errors: list[dict[str, Any]] = []
    columns: dict[str, list[Any]] = {name: [] for name in kinds}
    for index, row in enumerate(rows):
        for name in row:
            if name not in kinds:
                errors.append(_problem(["rows", index, name], f"unknown feature {name!r}"))
        for name, column in columns.items():
            column.append(row.get(name))
        if len(errors) > 20:
            break
    if errors:
        raise InvalidConfig("rows name features the product does not have", errors=errors)
    return {name: values for name, values in columns.items() if any(v is not None for v in values)}


def _unusable(profile: Profile, values: Sequence[Any] | None) -> tuple[list[int], str] | None:
    """Why a built profile cannot be stored, and where (relative to the feature), if it cannot.

    Numbers near the float64 limits pass the request checks but overflow the profile's moments
    (a mean or spread of infinity cannot be stored as JSON nor tested); PostgreSQL cannot store
    a category holding the NUL character.
    """
    if isinstance(profile, NumericProfile):
        arrays = (profile.values, profile.weights, profile.bin_edges, profile.bin_mass)
        moments = (profile.mean, profile.std, profile.atom_width)
        if not all(math.isfinite(m) for m in moments) or not all(
            np.isfinite(a).all() for a in arrays
        ):
            return [], "values too large: their mean or spread overflows float64"
        return None
    assert isinstance(profile, CategoricalProfile)
    if values is None:  # client counts: their keys were checked with the request
        return None
    # the raw values, not the profile's categories: numpy's fixed-width strings drop trailing NULs
    index = next((i for i, v in enumerate(values) if isinstance(v, str) and NUL in v), None)
    if index is None:
        return None
    return [index], "must not contain the NUL character (\\u0000)"


def _profile_from_client(name: str, kind: str, given: ProfileIn) -> Profile:
    if given.counts is not None:
        if kind == "numeric":
            raise InvalidConfig(
                f"feature {name!r} is numeric: send a histogram or quantiles",
                errors=[_problem(["profiles", name, "counts"], "numeric feature: use histogram")],
            )
        return categorical_profile_from_counts(given.counts, kind=kind)  # type: ignore[arg-type]
    if kind != "numeric":
        raise InvalidConfig(
            f"feature {name!r} is {kind}: send counts",
            errors=[_problem(["profiles", name], f"{kind} feature: use counts")],
        )
    if given.histogram is not None:
        return numeric_profile_from_histogram(given.histogram.edges, given.histogram.counts)
    assert given.quantiles is not None
    q = given.quantiles
    return numeric_profile_from_quantiles(q.probabilities, q.values, q.n, mean=q.mean, std=q.std)


def summarize(profile: Profile) -> dict[str, Any]:
    """A small JSON view of a profile for people (the bytes are for the statistics)."""
    if isinstance(profile, NumericProfile):
        values = profile.values
        return {
            "n": profile.n,
            "n_missing": profile.n_missing,
            "form": str(profile.form),
            "mean": round(float(profile.mean), 12),
            "std": round(float(profile.std), 12),
            "min": float(values[0]) if values.size else None,
            "max": float(values[-1]) if values.size else None,
        }
    assert isinstance(profile, CategoricalProfile)
    order = np.argsort(-profile.counts, kind="stable")[:20]
    return {
        "n": profile.n,
        "n_missing": profile.n_missing,
        "n_categories": len(profile.categories),
        "top": {profile.categories[i]: int(profile.counts[i]) for i in order},
    }


def build_profiles(
    body: ReferenceCreate, kinds: Mapping[str, str]
) -> tuple[dict[str, Profile], int]:
    """Profiles per feature and the row count; CPU-bound, run in a worker thread."""
    profiles: dict[str, Profile] = {}
    if body.profiles is not None:
        unknown = [n for n in body.profiles if n not in kinds]
        if unknown:
            raise InvalidConfig(
                "profiles name features the product does not have",
                errors=[_problem(["profiles", n], f"unknown feature {n!r}") for n in unknown],
            )
        for name, given in body.profiles.items():
            try:
                profiles[name] = _profile_from_client(name, kinds[name], given)
            except InvalidSample as exc:
                raise InvalidConfig(
                    exc.message, errors=[_problem(["profiles", name], exc.message)]
                ) from None
            problem = _unusable(profiles[name], None)
            if problem is not None:
                form = next(k for k in ("histogram", "quantiles", "counts") if getattr(given, k))
                where_ = ["profiles", name, form]
                msg = problem[1]
                raise InvalidConfig(f"{format_loc(where_)}: {msg}", errors=[_problem(where_, msg)])
        return profiles, max((p.n for p in profiles.values()), default=0)
    if body.rows is not None:
        columns = _columns_from_rows(body.rows, kinds)
        n_rows = len(body.rows)
        where = "rows"
    else:
        assert body.columns is not None
        columns = dict(body.columns)
        unknown = [n for n in columns if n not in kinds]
        if unknown:
            raise InvalidConfig(
                "columns name features the product does not have",
                errors=[_problem(["columns", n], f"unknown feature {n!r}") for n in unknown],
            )
        lengths = {len(v) for v in columns.values()}
        if len(lengths) > 1:
            raise InvalidConfig(
                "columns must all have the same length",
                errors=[_problem(["columns"], f"lengths differ: {sorted(lengths)}")],
            )
        n_rows = lengths.pop() if lengths else 0
        where = "columns"
    if n_rows > MAX_REFERENCE_ROWS:
        raise InvalidConfig(
            f"at most {MAX_REFERENCE_ROWS} reference rows",
            errors=[_problem([where], "too many rows")],
        )
    for name, values in columns.items():
        try:
            profiles[name] = build_profile(values, kinds[name], PROFILE_OPTIONS)
        except InvalidSample as exc:
            raise InvalidConfig(
                f"feature {name!r}: {exc.message}",
                errors=[_problem([where if where == "rows" else "columns", name], exc.message)],
            ) from None
        problem = _unusable(profiles[name], values)
        if problem is not None:
            at, msg = problem
            # rows[i].feature or columns.feature[i], the way the signals endpoints name fields
            loc: list[str | int] = (
                ["rows", *at, name] if where == "rows" else ["columns", name, *at]
            )
            raise InvalidConfig(f"{format_loc(loc)}: {msg}", errors=[_problem(loc, msg)])
    if not profiles:
        raise InvalidConfig(
            "the reference holds no values", errors=[_problem([where], "no feature values")]
        )
    return profiles, n_rows


async def create(
    session: AsyncSession, *, principal: Principal, product_name: str, body: ReferenceCreate
) -> Reference:
    """Profile and store a new reference version; activate it unless asked not to."""
    product = await product_service.get_visible_or_raise(
        session, principal=principal, name=product_name
    )
    kinds = {f["name"]: f["kind"] for f in product.features}
    profiles, n_rows = await anyio.to_thread.run_sync(build_profiles, body, kinds)
    repo = ReferenceRepository(session)
    # version = max + 1: concurrent uploads to one product wait for each other here instead
    # of colliding on the unique (product, version) and answering all but one with a 409
    await repo.lock_product(product.id)
    reference = await repo.add(
        Reference(
            product_id=product.id,
            version=await repo.next_version(product.id),
            active=False,
            source="profiles" if body.profiles is not None else "raw",
            description=body.description,
            model_version=body.model_version,
            trained_at=body.trained_at,
            baseline_metrics=dict(body.baseline_metrics),
            n_rows=n_rows,
            created_by=principal.actor,
        )
    )
    await repo.add_features(
        [
            ReferenceFeature(
                reference_id=reference.id,
                feature=name,
                kind=kinds[name],
                profile=profile_to_bytes(profile),
                summary=summarize(profile),
            )
            for name, profile in sorted(profiles.items())
        ]
    )
    await audit_service.record(
        session,
        principal=principal,
        action="create",
        entity_type="reference",
        entity_name=f"{product.name}@{reference.version}",
        team_id=product.team_id,
        diff={"features": sorted(profiles), "n_rows": n_rows, "source": reference.source},
    )
    if body.activate:
        await _activate(session, principal, product, reference, "uploaded with activate=true")
    return reference


async def _activate(
    session: AsyncSession, principal: Principal, product: Product, reference: Reference, why: str
) -> None:
    repo = ReferenceRepository(session)
    previous = await repo.active(product.id)
    await repo.deactivate_all(product.id)
    await session.flush()
    reference.active = True
    reference.activated_at = utcnow()
    await session.flush()
    if reference.trained_at is not None:
        # imported here: decisions reads references to evaluate, so a top-level import would cycle
        from retrigger.decisions import service as decision_service

        await decision_service.note_model_trained(
            session, product_id=product.id, trained_at=reference.trained_at
        )
    await audit_service.record(
        session,
        principal=principal,
        action="activate",
        entity_type="reference",
        entity_name=f"{product.name}@{reference.version}",
        team_id=product.team_id,
        diff={"active": {"old": previous.version if previous else None, "new": reference.version}},
        reason=why,
    )


async def activate(
    session: AsyncSession, *, principal: Principal, product_name: str, version: int, reason: str
) -> Reference:
    product = await product_service.get_visible_or_raise(
        session, principal=principal, name=product_name
    )
    await ReferenceRepository(session).lock_product(product.id)
    reference = await get_or_raise(session, product=product, version=version)
    if not reference.active:
        await _activate(session, principal, product, reference, reason)
    return reference


async def get_or_raise(session: AsyncSession, *, product: Product, version: int) -> Reference:
    reference = await ReferenceRepository(session).get_version(product.id, version)
    if reference is None:
        raise ReferenceNotFound(f"product '{product.name}' has no reference version {version}")
    return reference


async def list_(
    session: AsyncSession, *, principal: Principal, product_name: str
) -> Sequence[Reference]:
    product = await product_service.get_visible_or_raise(
        session, principal=principal, name=product_name
    )
    return await ReferenceRepository(session).list_for(product.id)


async def features(session: AsyncSession, *, reference: Reference) -> Sequence[ReferenceFeature]:
    return await ReferenceRepository(session).features(reference.id)


async def select(
    session: AsyncSession, *, product_id: int, version: int | None
) -> Reference | None:
    """The active reference (``version`` None) or a pinned version, for evaluation."""
    repo = ReferenceRepository(session)
    if version is None:
        return await repo.active(product_id)
    return await repo.get_version(product_id, version)


def _activated(reference: Reference) -> datetime | None:
    # an active reference without the record (activated before it was kept): since its upload
    if reference.activated_at is not None:
        return reference.activated_at
    return reference.created_at if reference.active else None


async def activation_history(session: AsyncSession, *, product_id: int) -> list[Reference]:
    """References ever activated, in the order of their last activation (for replays).

    Only the last activation of each is known: one activated, replaced and activated again
    counts as active from its last activation only.
    """
    rows = await ReferenceRepository(session).list_for(product_id)
    dated = [(when, r) for r in rows if (when := _activated(r)) is not None]
    dated.sort(key=lambda item: (item[0], item[1].id))
    return [r for _, r in dated]


def active_as_of(history: Sequence[Reference], at: datetime) -> Reference | None:
    """Of an ``activation_history``, the reference active at ``at``: the last activated by then."""
    chosen = None
    for reference in history:
        when = _activated(reference)
        if when is not None and when <= at:
            chosen = reference
    return chosen


def trained_at_as_of(history: Sequence[Reference], at: datetime) -> datetime | None:
    """When the model serving at ``at`` was trained, as live evaluations knew it then.

    Activating a reference that gives ``trained_at`` records it; one without leaves the earlier
    value, exactly as ``activate`` does; before any such activation it is unknown (None).
    """
    trained = None
    for reference in history:
        when = _activated(reference)
        if when is not None and when <= at and reference.trained_at is not None:
            trained = reference.trained_at
    return trained


async def active_at(session: AsyncSession, *, product_id: int, at: datetime) -> Reference | None:
    """The reference that was the active one at ``at`` (a replay's ``select``)."""
    return active_as_of(await activation_history(session, product_id=product_id), at)


async def load_profiles(
    session: AsyncSession, *, reference: Reference, names: Sequence[str] | None = None
) -> dict[str, Profile]:
    """Decoded profiles of a reference.

    References are immutable, so profiles are cached per process: a warm evaluation reads only
    the feature names, not the (up to megabytes of) profile bytes. The key includes the creation
    time because SQLite may hand a deleted product's reference id to a new reference.
    """
    key = (reference.id, reference.created_at.isoformat())
    cached = _PROFILES.get(key)
    if cached is None:
        rows = await ReferenceRepository(session).features(reference.id)
        cached = {row.feature: profile_from_bytes(row.profile) for row in rows}
        _PROFILES.put(key, cached)
    if names is None:
        return dict(cached)
    return {name: cached[name] for name in names if name in cached}


class _ProfileCache:
    """Decoded profiles of the most recently used references (bounded, least recent out)."""

    MAX_REFERENCES = 64

    def __init__(self) -> None:
        self._items: dict[tuple[int, str], dict[str, Profile]] = {}

    def get(self, reference_id: tuple[int, str]) -> dict[str, Profile] | None:
        item = self._items.pop(reference_id, None)
        if item is not None:
            self._items[reference_id] = item  # most recent last
        return item

    def put(self, reference_id: tuple[int, str], profiles: dict[str, Profile]) -> None:
        self._items.pop(reference_id, None)
        self._items[reference_id] = profiles
        while len(self._items) > self.MAX_REFERENCES:
            self._items.pop(next(iter(self._items)))


_PROFILES = _ProfileCache()
