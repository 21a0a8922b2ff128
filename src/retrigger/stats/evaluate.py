"""Drift of one product: every feature's test, the multiple-testing correction, the verdict.

``evaluate_features(reference_profiles, current_columns, config)`` is what the evaluation layer
calls per product and window. It is pure and CPU-bound (run it in a worker thread).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from retrigger.stats.auto import choose_test
from retrigger.stats.decision import (
    DEFAULT_ALPHA,
    DEFAULT_DRIFT_SHARE,
    DEFAULT_MIN_SAMPLES,
    Correction,
    adjust_pvalues,
    decide,
    weighted_share,
)
from retrigger.stats.drift import (
    DriftResult,
    DriftStatus,
    DriftTest,
    DriftTestRegistry,
    drift_tests,
)
from retrigger.stats.drift.base import Current, clean_current
from retrigger.stats.errors import EmptySample, InvalidSample
from retrigger.stats.profiles import CategoricalProfile, Profile


class DriftConfig(BaseModel):
    """How a product's features are tested (mirrors the ``data_drift`` policy rule)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    test: str = "auto"
    """Test for every feature: ``auto`` or a key; features of a kind the test does not cover
    fall back to ``auto`` (recorded in ``chosen_because``)."""
    feature_tests: dict[str, str] = Field(default_factory=dict)
    """Per-feature test key overriding ``test``."""
    params: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Parameters per test key, e.g. ``{"psi": {"bins": 20}}``."""
    alpha: float = Field(DEFAULT_ALPHA, gt=0, lt=1)
    correction: Correction = Correction.BONFERRONI
    min_effect: float | None = Field(None, ge=0)
    """Overrides every test's default effect threshold (per-key ``params`` win over it)."""
    min_samples: int = Field(DEFAULT_MIN_SAMPLES, ge=1)
    drift_share: float = Field(DEFAULT_DRIFT_SHARE, gt=0, le=1)
    weights: dict[str, float] | None = None
    """Feature importances for the share; ``None`` weighs all features 1, otherwise unlisted
    features weigh 0 (reported, but not counted)."""


class FeatureDrift(BaseModel):
    """One feature's finding within a product evaluation."""

    model_config = ConfigDict(frozen=True)

    test: str
    chosen_because: str
    weight: float
    result: DriftResult


class ProductDriftResult(BaseModel):
    """A product's drift verdict with every feature's finding (JSON-safe)."""

    model_config = ConfigDict(frozen=True, allow_inf_nan=False)

    status: DriftStatus
    drifted: bool
    share: float = Field(description="weighted share of drifted features among decided ones")
    drift_share: float = Field(description="threshold the share is compared with")
    alpha: float
    correction: Correction
    n_features: int
    n_decided: int
    drifted_features: list[str]
    features: dict[str, FeatureDrift]
    reason: str

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary."""
        return self.model_dump(mode="json")


def check_config(config: DriftConfig, registry: DriftTestRegistry = drift_tests) -> None:
    """Raise ``UnknownPlugin``/``InvalidConfig`` for unknown keys or bad parameters."""
    keys = {config.test, *config.feature_tests.values(), *config.params} - {"auto"}
    for key in sorted(keys):
        registry.get(key).parse_params(config.params.get(key))


def _test(
    config: DriftConfig, registry: DriftTestRegistry, key: str, cache: dict[str, DriftTest]
) -> DriftTest:
    if key not in cache:
        params = dict(config.params.get(key, {}))
        if config.min_effect is not None:
            params.setdefault("min_effect", config.min_effect)
        cache[key] = registry.create(key, params)
    return cache[key]


def _insufficient(name: str, profile: Profile, reason: str, missing_share: float) -> FeatureDrift:
    result = DriftResult(
        test="none",
        kind=profile.kind,
        status=DriftStatus.INSUFFICIENT_DATA,
        drifted=False,
        statistic=None,
        statistic_name="",
        effect_size=None,
        effect_name="",
        alpha=None,
        min_effect=0.0,
        n_ref=profile.n,
        n_cur=0,
        missing_share_ref=profile.n_missing / (profile.n + profile.n_missing),
        missing_share_cur=missing_share,
        reason=reason,
    )
    return FeatureDrift(
        test="none", chosen_because=f"{name}: not tested", weight=0.0, result=result
    )


def _n_categories(profile: Profile, current: Current) -> int:
    if isinstance(profile, CategoricalProfile) and isinstance(current, CategoricalProfile):
        return len(set(profile.categories) | set(current.categories))
    return 0


def _one_feature(
    name: str,
    profile: Profile,
    column: Any,
    config: DriftConfig,
    registry: DriftTestRegistry,
    cache: dict[str, DriftTest],
) -> FeatureDrift:
    try:
        current = clean_current(column, profile.kind)
    except EmptySample as exc:
        share = 1.0 if exc.n_missing else 0.0
        return _insufficient(name, profile, f"insufficient data: {exc.message}", share)
    key = config.feature_tests.get(name, config.test)
    prefix = ""
    if key != "auto" and profile.kind not in registry.get(key).kinds:
        prefix = f"configured {key} does not apply to {profile.kind} features; "
        key = "auto"
    if key == "auto":
        k = _n_categories(profile, current)
        key, why = choose_test(profile.kind, profile.n, current.n, n_categories=k)
        why = prefix + why
    else:
        why = f"configured: {key}"
    test = _test(config, registry, key, cache)
    result = test.evaluate(profile, current, alpha=config.alpha, min_samples=config.min_samples)
    weight = 1.0 if config.weights is None else float(config.weights.get(name, 0.0))
    return FeatureDrift(test=key, chosen_because=why, weight=weight, result=result)


def evaluate_features(
    reference_profiles: Mapping[str, Profile],
    current_columns: Mapping[str, Any],
    config: DriftConfig | None = None,
    *,
    registry: DriftTestRegistry = drift_tests,
) -> ProductDriftResult:
    """Test every referenced feature's current column and decide the product's drift."""
    cfg = config or DriftConfig()
    check_config(cfg, registry)
    cache: dict[str, DriftTest] = {}
    features: dict[str, FeatureDrift] = {}
    for name, profile in reference_profiles.items():
        if name not in current_columns:
            features[name] = _insufficient(
                name, profile, "insufficient data: no current values", 0.0
            )
            continue
        try:
            features[name] = _one_feature(
                name, profile, current_columns[name], cfg, registry, cache
            )
        except InvalidSample as exc:
            raise InvalidSample(
                f"feature {name!r}: {exc.message}",
                errors=[{"loc": ["features", name], "msg": exc.message}],
            ) from exc
    return _verdict(_corrected(features, cfg), cfg)


def _corrected(features: dict[str, FeatureDrift], cfg: DriftConfig) -> dict[str, FeatureDrift]:
    tested = [
        name
        for name, f in features.items()
        if f.result.status is not DriftStatus.INSUFFICIENT_DATA and f.result.p_value is not None
    ]
    adjusted = adjust_pvalues([features[n].result.p_value or 0.0 for n in tested], cfg.correction)
    out = dict(features)
    for name, p_adj in zip(tested, adjusted, strict=True):
        r = features[name].result
        assert r.effect_size is not None
        drifted, reason = decide(
            p_value=p_adj,
            effect=r.effect_size,
            alpha=cfg.alpha,
            min_effect=r.min_effect,
            effect_name=r.effect_name,
        )
        if cfg.correction is not Correction.NONE and len(tested) > 1:
            reason += (
                f" [{cfg.correction.value} over {len(tested)} features, raw p={r.p_value:.3g}]"
            )
        status = DriftStatus.DRIFT if drifted else DriftStatus.NO_DRIFT
        new = r.model_copy(
            update={
                "p_value_adjusted": p_adj,
                "drifted": drifted,
                "status": status,
                "reason": reason,
            }
        )
        out[name] = features[name].model_copy(update={"result": new})
    return out


def _verdict(features: dict[str, FeatureDrift], cfg: DriftConfig) -> ProductDriftResult:
    decided = {
        n: f for n, f in features.items() if f.result.status is not DriftStatus.INSUFFICIENT_DATA
    }
    drifted = [n for n, f in decided.items() if f.result.drifted]
    share = weighted_share(
        [f.result.drifted for f in decided.values()], [f.weight for f in decided.values()]
    )
    if not decided:
        status, reason = DriftStatus.INSUFFICIENT_DATA, "no feature had enough data to decide"
    else:
        hit = share >= cfg.drift_share
        status = DriftStatus.DRIFT if hit else DriftStatus.NO_DRIFT
        reason = (
            f"{len(drifted)} of {len(decided)} decided features drifted; weighted share "
            f"{share:.3g} {'>=' if hit else '<'} drift_share {cfg.drift_share:g}"
        )
    return ProductDriftResult(
        status=status,
        drifted=status is DriftStatus.DRIFT,
        share=share,
        drift_share=cfg.drift_share,
        alpha=cfg.alpha,
        correction=cfg.correction,
        n_features=len(features),
        n_decided=len(decided),
        drifted_features=drifted,
        features=features,
        reason=reason,
    )
