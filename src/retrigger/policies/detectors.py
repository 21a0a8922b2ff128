"""Parameters of the concept-drift detectors, validated per detector, with River's defaults."""

from __future__ import annotations

from enum import StrEnum
from typing import Final, Self

from pydantic import Field, model_validator

from retrigger.policies.fields import SpecModel
from retrigger.policies.problems import fail

__all__ = [
    "PARAMS_BY_DETECTOR",
    "ADWINParams",
    "DDMParams",
    "Detector",
    "DetectorParams",
    "EDDMParams",
    "HDDMAParams",
    "KSWINParams",
    "PageHinkleyMode",
    "PageHinkleyParams",
]


class Detector(StrEnum):
    """Streaming change detectors run over the error stream of outcomes."""

    ADWIN = "adwin"
    DDM = "ddm"
    EDDM = "eddm"
    PAGE_HINKLEY = "page_hinkley"
    KSWIN = "kswin"
    HDDM_A = "hddm_a"


class ADWINParams(SpecModel):
    """ADaptive WINdowing (Bifet and Gavalda, 2007)."""

    delta: float = Field(0.002, gt=0, lt=1)
    """Confidence value: smaller means fewer, surer detections."""
    clock: int = Field(32, ge=1)
    """How often (in observations) the window is checked for a cut."""
    max_buckets: int = Field(5, ge=1)
    """Buckets of each size kept before merging."""
    min_window_length: int = Field(5, ge=1)
    """Smallest sub-window compared."""
    grace_period: int = Field(10, ge=1)
    """Observations seen before any detection."""


class DDMParams(SpecModel):
    """Drift Detection Method (Gama et al., 2004); input is a 0/1 error stream."""

    warm_start: int = Field(30, ge=1)
    """Observations before detection starts."""
    warning_threshold: float = Field(2.0, gt=0)
    """Standard deviations above the minimum that raise a warning."""
    drift_threshold: float = Field(3.0, gt=0)
    """Standard deviations above the minimum that signal drift."""

    @model_validator(mode="after")
    def _drift_above_warning(self) -> Self:
        if self.drift_threshold <= self.warning_threshold:
            fail(
                "DDMParams",
                [(("drift_threshold",), "threshold_order", "must be above warning_threshold")],
            )
        return self


class EDDMParams(SpecModel):
    """Early Drift Detection Method (Baena-Garcia et al., 2006); input is a 0/1 error stream."""

    warm_start: int = Field(30, ge=1)
    """Errors seen before detection starts."""
    alpha: float = Field(0.95, gt=0, lt=1)
    """Warning level of the distance ratio."""
    beta: float = Field(0.9, gt=0, lt=1)
    """Drift level of the distance ratio; at most ``alpha``."""

    @model_validator(mode="after")
    def _beta_below_alpha(self) -> Self:
        if self.beta > self.alpha:
            fail("EDDMParams", [(("beta",), "threshold_order", "must not exceed alpha")])
        return self


class PageHinkleyMode(StrEnum):
    """Which direction of change Page-Hinkley watches."""

    BOTH = "both"
    UP = "up"
    DOWN = "down"


class PageHinkleyParams(SpecModel):
    """Page-Hinkley test (Page, 1954) on the mean of the error stream."""

    min_instances: int = Field(30, ge=1)
    """Observations before detection starts."""
    delta: float = Field(0.005, ge=0)
    """Magnitude of change tolerated."""
    threshold: float = Field(50.0, gt=0)
    """Cumulative deviation that signals drift."""
    alpha: float = Field(1 - 0.0001, gt=0, le=1)
    """Forgetting factor of the cumulative sums."""
    mode: PageHinkleyMode = PageHinkleyMode.BOTH
    """``up`` watches increases of the error, ``down`` decreases, ``both`` either."""


class KSWINParams(SpecModel):
    """Kolmogorov-Smirnov WINdowing (Raab et al., 2020) on a sliding window of errors."""

    alpha: float = Field(0.005, gt=0, lt=1)
    """Significance level of the KS test."""
    window_size: int = Field(100, ge=2)
    """Observations kept in the sliding window."""
    stat_size: int = Field(30, ge=1)
    """Most recent observations compared with a sample of the older ones."""
    seed: int | None = Field(None, ge=0)
    """Seed of the sampling, for reproducible detections."""

    @model_validator(mode="after")
    def _stat_inside_window(self) -> Self:
        if self.stat_size >= self.window_size:
            fail("KSWINParams", [(("stat_size",), "window_order", "must be below window_size")])
        return self


class HDDMAParams(SpecModel):
    """Hoeffding's bound drift detection, average variant (Frias-Blanco et al., 2014)."""

    drift_confidence: float = Field(0.001, gt=0, lt=1)
    """Confidence level of drift detection."""
    warning_confidence: float = Field(0.005, gt=0, lt=1)
    """Confidence level of warnings; at least ``drift_confidence``."""
    two_sided_test: bool = False
    """Also detect decreases of the error rate."""

    @model_validator(mode="after")
    def _warning_looser_than_drift(self) -> Self:
        if self.warning_confidence < self.drift_confidence:
            fail(
                "HDDMAParams",
                [(("warning_confidence",), "threshold_order", "must be at least drift_confidence")],
            )
        return self


DetectorParams = (
    ADWINParams | DDMParams | EDDMParams | PageHinkleyParams | KSWINParams | HDDMAParams
)

PARAMS_BY_DETECTOR: Final[dict[Detector, type[DetectorParams]]] = {
    Detector.ADWIN: ADWINParams,
    Detector.DDM: DDMParams,
    Detector.EDDM: EDDMParams,
    Detector.PAGE_HINKLEY: PageHinkleyParams,
    Detector.KSWIN: KSWINParams,
    Detector.HDDM_A: HDDMAParams,
}
