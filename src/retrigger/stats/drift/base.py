"""The drift-test plugin contract: ``DriftTest`` (a template method) and its parameter model.

``evaluate`` does everything that is the same for every test: turn raw data into a profile and a
clean sample, check kinds, refuse to decide below ``min_samples``, apply the decision rule and
build the JSON-safe result. A subclass only computes ``statistic``.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from retrigger.stats.decision import DEFAULT_ALPHA, DEFAULT_MIN_SAMPLES, decide
from retrigger.stats.drift.results import DriftResult, DriftStatus, Statistic
from retrigger.stats.errors import InvalidConfig, InvalidSample
from retrigger.stats.profiles import (
    CategoricalProfile,
    NumericProfile,
    Profile,
    categorical_profile,
    numeric_profile,
)
from retrigger.stats.samples import FeatureKind, NumericSample, infer_kind, numeric_sample

Current = NumericSample | CategoricalProfile


class DriftParams(BaseModel):
    """Parameters common to every test; subclasses add their own (validated at policy save)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    min_effect: float | None = Field(None, ge=0)
    """Smallest effect size that counts as material; ``None`` uses the test's default."""


class DriftTest(abc.ABC):
    """A two-sample drift test of one feature: reference profile against a current window."""

    key: ClassVar[str]
    params_model: ClassVar[type[DriftParams]] = DriftParams
    kinds: ClassVar[frozenset[FeatureKind]]
    statistic_name: ClassVar[str]
    effect_name: ClassVar[str]
    default_min_effect: ClassVar[float]
    has_p_value: ClassVar[bool] = False
    symmetric_kinds: ClassVar[frozenset[FeatureKind]] = frozenset()
    """Kinds for which swapping reference and current leaves the p-value, the effect size and
    the statistic (up to its sign) unchanged."""

    def __init__(self, params: DriftParams | Mapping[str, Any] | None = None) -> None:
        self.params = self.parse_params(params)

    @classmethod
    def parse_params(cls, params: DriftParams | Mapping[str, Any] | None) -> DriftParams:
        """Validate parameters with ``params_model``; problems raise ``InvalidConfig``."""
        if isinstance(params, cls.params_model):
            return params
        raw = params.model_dump() if isinstance(params, BaseModel) else dict(params or {})
        try:
            return cls.params_model.model_validate(raw)
        except ValidationError as exc:
            errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
            raise InvalidConfig(
                f"invalid parameters for drift test {cls.key!r}", errors=errors
            ) from exc

    @classmethod
    def examples(cls) -> Iterable[DriftParams]:
        """Parameter sets the conformance suite runs (defaults first)."""
        yield cls.params_model()

    @property
    def min_effect(self) -> float:
        """Effect-size threshold in force: the parameter, else the test's documented default."""
        value = self.params.min_effect
        return self.default_min_effect if value is None else value

    # -- template method ---------------------------------------------------------------------

    def evaluate(
        self,
        reference: Profile | Any,
        current: Current | Any,
        *,
        alpha: float = DEFAULT_ALPHA,
        min_samples: int = DEFAULT_MIN_SAMPLES,
    ) -> DriftResult:
        """Test ``current`` against ``reference`` (raw values or a profile) and decide."""
        ref = self.reference_profile(reference)
        cur = self.current_sample(current, ref.kind)
        base: dict[str, Any] = {
            "test": self.key,
            "kind": ref.kind,
            "statistic_name": self.statistic_name,
            "effect_name": self.effect_name,
            "alpha": alpha if self.has_p_value else None,
            "min_effect": self.min_effect,
            "n_ref": ref.n,
            "n_cur": cur.n,
            "missing_share_ref": _share(ref.n_missing, ref.n),
            "missing_share_cur": _share(cur.n_missing, cur.n),
        }
        if min(ref.n, cur.n) < min_samples:
            return DriftResult(
                status=DriftStatus.INSUFFICIENT_DATA,
                drifted=False,
                statistic=None,
                effect_size=None,
                reason=(
                    f"insufficient data: n_ref={ref.n}, n_cur={cur.n}, min_samples={min_samples}"
                ),
                **base,
            )
        stat = self.statistic(ref, cur)
        drifted, reason = decide(
            p_value=stat.p_value,
            effect=stat.effect,
            alpha=alpha,
            min_effect=self.min_effect,
            effect_name=self.effect_name,
        )
        return DriftResult(
            status=DriftStatus.DRIFT if drifted else DriftStatus.NO_DRIFT,
            drifted=drifted,
            statistic=stat.value,
            p_value=stat.p_value,
            p_value_adjusted=stat.p_value,
            effect_size=stat.effect,
            reason=reason,
            details=stat.details,
            **base,
        )

    @abc.abstractmethod
    def statistic(self, reference: Profile, current: Current) -> Statistic:
        """Compute the statistic, effect size and (if any) p-value on clean inputs."""

    # -- input handling ----------------------------------------------------------------------

    def _kind_for(self, values: Any) -> FeatureKind:
        kind = infer_kind(values)
        if kind in self.kinds:
            return kind
        for preferred in (FeatureKind.NUMERIC, FeatureKind.CATEGORICAL, FeatureKind.BOOLEAN):
            if preferred in self.kinds:
                return preferred
        raise AssertionError("a drift test declares at least one kind")  # pragma: no cover

    def reference_profile(self, reference: Profile | Any) -> Profile:
        """Use a profile as is, or profile raw reference values; check the kind applies."""
        if isinstance(reference, NumericProfile | CategoricalProfile):
            profile: Profile = reference
        elif (kind := self._kind_for(reference)) is FeatureKind.NUMERIC:
            profile = numeric_profile(reference)
        else:
            profile = categorical_profile(reference, kind=kind)
        if profile.kind not in self.kinds:
            allowed = ", ".join(sorted(self.kinds))
            raise InvalidSample(
                f"test {self.key!r} applies to {allowed} features, not {profile.kind}"
            )
        return profile

    def current_sample(self, current: Current | Any, kind: FeatureKind) -> Current:
        """Clean a raw current window for a feature of ``kind`` (see ``clean_current``)."""
        return clean_current(current, kind)


def clean_current(current: Current | Any, kind: FeatureKind) -> Current:
    """Clean a raw current window for a feature of ``kind``, or check a ready sample's kind."""
    if isinstance(current, NumericSample | CategoricalProfile):
        given = current.kind if isinstance(current, CategoricalProfile) else FeatureKind.NUMERIC
        if given is not kind:
            raise InvalidSample(f"current sample is {given}, the feature is {kind}")
        return current
    if kind is FeatureKind.NUMERIC:
        return numeric_sample(current, what="current")
    return categorical_profile(current, kind=kind)


def _share(missing: int, kept: int) -> float:
    total = missing + kept
    return missing / total if total else 0.0


def numeric_inputs(reference: Profile, current: Current) -> tuple[NumericProfile, NumericSample]:
    """Narrow the inputs of a numeric-only test (the template method guarantees the kinds)."""
    if not isinstance(reference, NumericProfile) or not isinstance(current, NumericSample):
        raise InvalidSample("numeric test given non-numeric data")
    return reference, current


def categorical_inputs(
    reference: Profile, current: Current
) -> tuple[CategoricalProfile, CategoricalProfile]:
    """Narrow the inputs of a categorical test."""
    if not isinstance(reference, CategoricalProfile) or not isinstance(current, CategoricalProfile):
        raise InvalidSample("categorical test given non-categorical data")
    return reference, current
