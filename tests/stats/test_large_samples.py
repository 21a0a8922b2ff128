"""Large samples: a negligible 0.02 sd shift is not drift at n = 1e5 and 1e6 under the default
rule, while a 0.5 sd shift is found at n >= 100 with power >= 0.9."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from retrigger.stats.drift import DriftStatus
from retrigger.stats.drift.ks import KSTest
from retrigger.stats.evaluate import evaluate_features
from retrigger.stats.profiles import numeric_profile


@pytest.mark.slow
@pytest.mark.parametrize("n", [100_000, 1_000_000])
def test_negligible_shift_is_not_drift(
    n: int, make_rng: Callable[[int], np.random.Generator]
) -> None:
    g = make_rng(21)
    reference = numeric_profile(g.normal(size=n))
    current = g.normal(0.02, 1.0, size=n)
    product = evaluate_features({"x": reference}, {"x": current})
    assert product.status is DriftStatus.NO_DRIFT
    assert product.features["x"].test == "wasserstein"
    # KS, named explicitly, finds the shift significant but not material
    ks = KSTest().evaluate(reference, current)
    assert ks.p_value is not None
    assert ks.p_value < 0.05
    assert not ks.drifted
    assert "not material" in ks.reason


@pytest.mark.slow
@pytest.mark.parametrize(
    ("n_ref", "n_cur"),
    [(1_000, 100), (10_000, 100), (10_000, 300), (10_000, 2_000), (100_000, 100_000)],
)
def test_half_sd_shift_is_detected(
    n_ref: int, n_cur: int, make_rng: Callable[[int], np.random.Generator]
) -> None:
    g = make_rng(22)
    reference = numeric_profile(g.normal(size=n_ref))
    trials = 200 if n_cur < 10_000 else 20
    hits = sum(
        evaluate_features({"x": reference}, {"x": g.normal(0.5, 1.0, size=n_cur)}).drifted
        for _ in range(trials)
    )
    assert hits / trials >= 0.9
