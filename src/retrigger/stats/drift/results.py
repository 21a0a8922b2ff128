"""What a drift test returns: a JSON-safe finding for one feature (no NaN or infinity, ever)."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from retrigger.stats.samples import FeatureKind

Detail = str | int | float | bool


class DriftStatus(StrEnum):
    """Verdict of a test: decided either way, or not decided for lack of data."""

    DRIFT = "drift"
    NO_DRIFT = "no_drift"
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class Statistic:
    """Raw output of ``DriftTest.statistic``: value, effect size, optional p-value, details."""

    value: float
    effect: float
    p_value: float | None = None
    details: dict[str, Detail] = field(default_factory=dict)


class DriftResult(BaseModel):
    """One feature's finding. ``p_value`` is None for distance-only tests and ``statistic``,
    ``effect_size`` are None when the data was insufficient. ``p_value_adjusted`` is the p-value
    after the multiple-testing correction applied across features (equal to ``p_value`` when a
    test runs alone). Missing shares count NaN, infinities and nulls that were excluded."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)

    test: str
    kind: FeatureKind
    status: DriftStatus
    drifted: bool
    statistic: float | None
    statistic_name: str
    p_value: float | None = Field(None, ge=0, le=1)
    p_value_adjusted: float | None = Field(None, ge=0, le=1)
    effect_size: float | None
    effect_name: str
    alpha: float | None = Field(description="significance level; None for distance-only tests")
    min_effect: float = Field(ge=0)
    n_ref: int = Field(ge=0)
    n_cur: int = Field(ge=0)
    missing_share_ref: float = Field(ge=0, le=1)
    missing_share_cur: float = Field(ge=0, le=1)
    reason: str
    details: dict[str, Detail] = Field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready dictionary (safe for ``json.dumps(..., allow_nan=False)``)."""
        return self.model_dump(mode="json")
