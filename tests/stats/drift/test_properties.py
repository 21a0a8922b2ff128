"""Property tests over arbitrary inputs: never NaN or infinity, deterministic, symmetric where
the test is, and only InvalidSample (never a crash) for unusable input."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from retrigger.stats.drift import DriftResult, drift_tests
from retrigger.stats.errors import EmptySample
from retrigger.stats.samples import FeatureKind

FLOATS = st.floats(allow_nan=True, allow_infinity=True, width=64)
VALUES = {
    FeatureKind.NUMERIC: st.lists(
        st.one_of(FLOATS, st.integers(-5, 5).map(float)), min_size=1, max_size=60
    ),
    FeatureKind.CATEGORICAL: st.lists(
        st.sampled_from(["a", "b", "c", "d", None]), min_size=1, max_size=60
    ),
    FeatureKind.BOOLEAN: st.lists(st.sampled_from([True, False, None]), min_size=1, max_size=60),
}
CASES = [
    pytest.param(key, kind, id=f"{key}-{kind.value}")
    for key in drift_tests.keys()
    for kind in sorted(drift_tests.get(key).kinds)
]
SETTINGS = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.filter_too_much]
)


def _run(key: str, ref: list[Any], cur: list[Any], kind: FeatureKind) -> DriftResult:
    test = drift_tests.create(key)
    profile = test.reference_profile(ref) if kind is FeatureKind.NUMERIC else None
    try:
        return test.evaluate(profile if profile is not None else ref, cur, min_samples=1)
    except EmptySample:
        assume(False)
        raise


def _finite(result: DriftResult) -> None:
    json.dumps(result.as_dict(), allow_nan=False)
    for value in (result.statistic, result.p_value, result.effect_size):
        assert value is None or math.isfinite(value)


@pytest.mark.parametrize(("key", "kind"), CASES)
def test_finite_deterministic_symmetric(key: str, kind: FeatureKind) -> None:
    @SETTINGS
    @given(ref=VALUES[kind], cur=VALUES[kind])
    def check(ref: list[Any], cur: list[Any]) -> None:
        try:
            forward = _run(key, ref, cur, kind)
        except EmptySample:  # pragma: no cover - assume() above rejects these
            return
        _finite(forward)
        assert _run(key, ref, cur, kind) == forward
        if kind in drift_tests.get(key).symmetric_kinds:
            backward = _run(key, cur, ref, kind)
            _finite(backward)
            assert backward.effect_size == pytest.approx(forward.effect_size, rel=1e-9, abs=1e-12)
            if forward.p_value is not None:
                assert backward.p_value == pytest.approx(forward.p_value, rel=1e-9, abs=1e-12)
            assert abs(backward.statistic or 0.0) == pytest.approx(
                abs(forward.statistic or 0.0), rel=1e-9, abs=1e-12
            )

    check()
