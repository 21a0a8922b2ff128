"""Retraining rules: one strict model per ``type``, combined in the discriminated union ``Rule``.

Each rule is a criterion that *holds* (fires) or not at an evaluation; the evaluation layer
decides how, these models only define and validate what a policy author may write.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    Discriminator,
    Field,
    StringConstraints,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from retrigger.policies.detectors import PARAMS_BY_DETECTOR, Detector, DetectorParams
from retrigger.policies.durations import Duration, Window
from retrigger.policies.fields import CronText, RuleId, SpecModel, TimeZoneName
from retrigger.policies.matchers import AlertOrigin, AlertStatus, Matcher
from retrigger.policies.problems import Problem, fail

__all__ = [
    "METRIC_DIRECTIONS",
    "RULE_MODELS",
    "AlertRule",
    "ConceptDriftRule",
    "Correction",
    "DataDriftRule",
    "Direction",
    "DriftTestKey",
    "ErrorSource",
    "Metric",
    "PerformanceRule",
    "Rule",
    "RuleModel",
    "RuleType",
    "ScheduleRule",
    "StalenessRule",
]


class RuleType(StrEnum):
    """The kinds of retraining criteria."""

    PERFORMANCE = "performance"
    DATA_DRIFT = "data_drift"
    CONCEPT_DRIFT = "concept_drift"
    STALENESS = "staleness"
    SCHEDULE = "schedule"
    ALERT = "alert"


class _RuleBase(SpecModel):
    id: RuleId
    """Unique within the policy; overrides, inhibitions and diffs address the rule by it."""
    description: str | None = Field(None, max_length=500)
    """Why the rule exists, shown next to its findings."""


class Metric(StrEnum):
    """Built-in model-quality metrics; any other slug is a custom metric."""

    ACCURACY = "accuracy"
    PRECISION = "precision"
    RECALL = "recall"
    F1 = "f1"
    AUC = "auc"
    RMSE = "rmse"
    MAE = "mae"
    LOG_LOSS = "log_loss"


class Direction(StrEnum):
    """Whether a larger metric value is an improvement or a degradation."""

    HIGHER_IS_BETTER = "higher_is_better"
    LOWER_IS_BETTER = "lower_is_better"


METRIC_DIRECTIONS: Final = {
    Metric.ACCURACY: Direction.HIGHER_IS_BETTER,
    Metric.PRECISION: Direction.HIGHER_IS_BETTER,
    Metric.RECALL: Direction.HIGHER_IS_BETTER,
    Metric.F1: Direction.HIGHER_IS_BETTER,
    Metric.AUC: Direction.HIGHER_IS_BETTER,
    Metric.RMSE: Direction.LOWER_IS_BETTER,
    Metric.MAE: Direction.LOWER_IS_BETTER,
    Metric.LOG_LOSS: Direction.LOWER_IS_BETTER,
}

MetricName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_.:-]{0,62}$")]


class PerformanceRule(_RuleBase):
    """Holds when the metric is worse than a threshold in ``m`` of the last ``n`` evaluations."""

    type: Literal["performance"]
    metric: MetricName
    """A built-in metric (accuracy, precision, recall, f1, auc, rmse, mae, log_loss) or custom."""
    direction: Direction | None = None
    """Inferred for built-in metrics; required for custom ones."""
    threshold: float | None = None
    """Absolute bound: worse than this value breaches."""
    relative_threshold: float | None = Field(None, gt=0, le=10)
    """Relative bound: worse than the deployed version's baseline by more than this fraction."""
    window: Window = Field("7d", validate_default=True)
    """Outcomes the metric is computed on."""
    min_samples: int = Field(100, ge=1)
    """Below this many outcomes the rule reports insufficient data instead of deciding."""
    n: int = Field(1, ge=1, le=100)
    """Evaluations looked back on."""
    m: int = Field(1, ge=1, le=100)
    """Breaches among the last ``n`` evaluations needed to hold (``m == n``: consecutive)."""

    @property
    def effective_direction(self) -> Direction:
        """The direction, inferred or written (never ``None`` after validation)."""
        assert self.direction is not None
        return self.direction

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems: list[Problem] = []
        inferred = METRIC_DIRECTIONS.get(self.metric)  # type: ignore[call-overload]
        if self.direction is None and inferred is None:
            problems.append(
                (("direction",), "missing", f"required for the custom metric {self.metric!r}")
            )
        elif self.direction is None:
            # Inferred, not written: kept out of model_fields_set so provenance says "default".
            self.__dict__["direction"] = inferred
        elif inferred is not None and self.direction != inferred:
            problems.append(
                (("direction",), "direction_mismatch", f"{self.metric} is {inferred.value}")
            )
        if (self.threshold is None) == (self.relative_threshold is None):
            loc = "threshold" if self.threshold is None else "relative_threshold"
            problems.append(
                ((loc,), "threshold_choice", "set exactly one of threshold or relative_threshold")
            )
        if self.m > self.n:
            problems.append((("m",), "m_greater_than_n", f"must not exceed n ({self.n})"))
        if problems:
            fail("PerformanceRule", problems)
        return self


class DriftTestKey(StrEnum):
    """Per-feature two-sample tests; ``auto`` picks by feature kind and sample size."""

    AUTO = "auto"
    KS = "ks"
    CHI2 = "chi2"
    PSI = "psi"
    WASSERSTEIN = "wasserstein"
    JENSEN_SHANNON = "jensen_shannon"
    HELLINGER = "hellinger"
    LINF = "linf"
    Z = "z"


class Correction(StrEnum):
    """Multiple-testing correction across features."""

    BONFERRONI = "bonferroni"
    FDR_BH = "fdr_bh"
    NONE = "none"


FeatureName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _features_tag(value: Any) -> str | None:
    if value == "*":
        return "all"
    return "list" if isinstance(value, list | tuple) else None


FeatureSelection = Annotated[
    Annotated[Literal["*"], Tag("all")]
    | Annotated[list[FeatureName], Field(min_length=1), Tag("list")],
    Discriminator(
        _features_tag,
        custom_error_type="features",
        custom_error_message="must be '*' or a non-empty list of feature names",
    ),
]


def _reference_tag(value: Any) -> str | None:
    if value == "active":
        return "active"
    return "version" if isinstance(value, int) and not isinstance(value, bool) else None


ReferenceSelector = Annotated[
    Annotated[Literal["active"], Tag("active")] | Annotated[int, Field(ge=1), Tag("version")],
    Discriminator(
        _reference_tag,
        custom_error_type="reference",
        custom_error_message="must be 'active' or a reference version number",
    ),
]


class DataDriftRule(_RuleBase):
    """Holds when the (weighted) share of drifted features reaches ``drift_share``.

    A feature drifts when it is both significant (corrected p < ``alpha``) and material
    (effect size >= ``min_effect``); with fewer than ``min_samples`` rows it is not decided.
    """

    type: Literal["data_drift"]
    features: FeatureSelection = "*"
    """Feature names, or ``*`` for every feature of the product's schema."""
    test: DriftTestKey = DriftTestKey.AUTO
    """Test applied to each feature; ``auto`` chooses by kind and sample size."""
    alpha: float = Field(0.05, gt=0, lt=1)
    """Significance level, after correction."""
    correction: Correction = Correction.BONFERRONI
    """Multiple-testing correction across the tested features."""
    min_effect: float | None = Field(None, ge=0)
    """Smallest effect size that counts; ``null`` uses the test's own default."""
    min_samples: int = Field(100, ge=1)
    """Rows needed in both reference and current window to decide."""
    drift_share: float = Field(0.5, gt=0, le=1)
    """Share of drifted features (0, 1] at which the rule holds."""
    weight_by_importance: bool = False
    """Weight the share by the feature importances of the product's schema."""
    window: Window = Field("7d", validate_default=True)
    """Current production samples compared with the reference."""
    reference: ReferenceSelector = "active"
    """The product's active reference, or a pinned reference version."""

    @field_validator("features")
    @classmethod
    def _unique_features(cls, value: str | list[str]) -> str | list[str]:
        if isinstance(value, list):
            problems: list[Problem] = []
            seen: set[str] = set()
            for index, name in enumerate(value):
                if name in seen:
                    problems.append(((index,), "duplicate", f"duplicate feature {name!r}"))
                seen.add(name)
            if problems:
                fail("features", problems)
        return value


class ErrorSource(StrEnum):
    """The stream a concept-drift detector reads: per outcome, 0/1 misclassification for
    classifiers or absolute error for regressors."""

    ERRORS = "errors"


class ConceptDriftRule(_RuleBase):
    """Holds while the streaming detector signals drift on the outcome error stream."""

    type: Literal["concept_drift"]
    detector: Detector = Detector.ADWIN
    """Detector algorithm; its parameters are validated in ``params``."""
    params: DetectorParams = Field(None, validate_default=True)  # filled per detector
    """Detector parameters; omitted ones take River's defaults."""
    source: ErrorSource = ErrorSource.ERRORS
    """Stream fed to the detector."""

    @field_validator("params", mode="before")
    @classmethod
    def _params_for_detector(cls, value: Any, info: ValidationInfo) -> Any:
        detector = info.data.get("detector")
        if detector is None:  # the detector itself is invalid and already reported
            return value
        model = PARAMS_BY_DETECTOR[detector]
        if isinstance(value, model):
            return value
        return model.model_validate({} if value is None else value)


class StalenessRule(_RuleBase):
    """Holds when the deployed model is older than ``max_age`` (and enough new data exists)."""

    type: Literal["staleness"]
    max_age: Duration
    """Age of the deployed model (since its training) beyond which it is stale."""
    min_new_samples: int | None = Field(None, ge=1)
    """Also require this many labelled rows since the last retrain."""


class ScheduleRule(_RuleBase):
    """Holds at each fire time of a cron expression in a time zone."""

    type: Literal["schedule"]
    cron: CronText
    """Five fields (minute hour day-of-month month day-of-week) or a macro such as ``@weekly``."""
    timezone: TimeZoneName = "UTC"
    """IANA time zone the expression is read in."""


class AlertRule(_RuleBase):
    """Holds while a matching alert is in ``status``."""

    type: Literal["alert"]
    matchers: list[Matcher] = Field(min_length=1, max_length=20)
    """All must match the alert's labels."""
    severity: str | None = Field(None, min_length=1, max_length=100)
    """Shorthand for a matcher ``severity = <value>``."""
    status: AlertStatus = AlertStatus.FIRING
    """Alert state that makes the rule hold."""
    origin: AlertOrigin = AlertOrigin.ANY
    """Only alerts received through this webhook."""


Rule = Annotated[
    PerformanceRule | DataDriftRule | ConceptDriftRule | StalenessRule | ScheduleRule | AlertRule,
    Field(discriminator="type"),
]
RuleModel = (
    PerformanceRule | DataDriftRule | ConceptDriftRule | StalenessRule | ScheduleRule | AlertRule
)
RULE_MODELS: Final[dict[RuleType, type[RuleModel]]] = {
    RuleType.PERFORMANCE: PerformanceRule,
    RuleType.DATA_DRIFT: DataDriftRule,
    RuleType.CONCEPT_DRIFT: ConceptDriftRule,
    RuleType.STALENESS: StalenessRule,
    RuleType.SCHEDULE: ScheduleRule,
    RuleType.ALERT: AlertRule,
}
