"""The drift decision rule: significant AND material, multiple-testing corrections, product share.

A feature drifts when its (corrected) p-value is below ``alpha`` and its effect size reaches
``min_effect``; tests without a p-value decide on the effect size alone. A product drifts when the
(optionally importance-weighted) share of drifted features among those decided reaches
``drift_share``.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

import numpy as np

DEFAULT_ALPHA = 0.05
DEFAULT_MIN_SAMPLES = 100
DEFAULT_DRIFT_SHARE = 0.5


class Correction(StrEnum):
    """Multiple-testing correction across the features of one product."""

    BONFERRONI = "bonferroni"
    FDR_BH = "fdr_bh"
    NONE = "none"


def adjust_pvalues(p_values: Sequence[float], correction: Correction | str) -> list[float]:
    """Adjusted p-values, in input order: Bonferroni (family-wise error), Benjamini-Hochberg
    (false discovery rate), or unchanged. Compare the result with ``alpha``."""
    method = Correction(correction)
    p = np.asarray(p_values, dtype=np.float64)
    k = p.size
    if k == 0 or method is Correction.NONE:
        return [float(x) for x in p]
    if method is Correction.BONFERRONI:
        return [float(x) for x in np.minimum(p * k, 1.0)]
    order = np.argsort(p, kind="stable")
    scaled = p[order] * k / np.arange(1, k + 1)
    stepped = np.minimum.accumulate(scaled[::-1])[::-1]
    out = np.empty(k, dtype=np.float64)
    out[order] = np.minimum(stepped, 1.0)
    return [float(x) for x in out]


def decide(
    *,
    p_value: float | None,
    effect: float,
    alpha: float,
    min_effect: float,
    effect_name: str,
) -> tuple[bool, str]:
    """Apply the rule to one feature; returns (drifted, a short human reason)."""
    material = effect >= min_effect
    size = f"{effect_name}={effect:.4g} {'>=' if material else '<'} min_effect {min_effect:g}"
    if p_value is None:
        return material, f"{size}: {'drift' if material else 'no drift'} (distance-only test)"
    significant = p_value < alpha
    level = f"p={p_value:.3g} {'<' if significant else '>='} alpha {alpha:g}"
    if significant and material:
        return True, f"drift: significant ({level}) and material ({size})"
    if significant:
        return False, f"no drift: significant ({level}) but not material ({size})"
    return False, f"no drift: not significant ({level}); {size}"


def weighted_share(drifted: Sequence[bool], weights: Sequence[float]) -> float:
    """Weighted share of drifted features (0 when every weight is zero)."""
    total = float(sum(weights))
    if total <= 0:
        return 0.0
    return float(sum(w for d, w in zip(drifted, weights, strict=True) if d)) / total
