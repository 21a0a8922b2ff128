"""Property tests: any valid stream, parameters and chunking give River's indices, no crash."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from retrigger.stats import detectors
from retrigger.stats.detectors import MAX_ABS

PROFILE = settings(
    max_examples=250,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

bits = st.lists(st.integers(0, 1), max_size=600)
reals = st.lists(
    st.one_of(
        st.floats(-1e3, 1e3, allow_nan=False),
        st.integers(-5, 5).map(float),
        st.sampled_from([0.0, -0.0, 5e-324, 1e-300]),
    ),
    max_size=600,
)
chunkings = st.lists(st.integers(0, 300), max_size=8).map(lambda sizes: [*sizes, 97])


@st.composite
def segmented(draw: st.DrawFn, binary: bool) -> list[float]:
    """Piecewise-stationary streams (abrupt changes) so that detections actually happen."""
    seed = draw(st.integers(0, 2**32 - 1))
    segments = draw(
        st.lists(st.tuples(st.integers(1, 700), st.floats(0, 1)), min_size=1, max_size=4)
    )
    rng = np.random.default_rng(seed)
    parts = [
        (rng.random(n) < p).astype(float) if binary else rng.normal(10 * p, 1 + p, n)
        for n, p in segments
    ]
    out: list[float] = np.concatenate(parts).tolist()
    return out


PARAMS: dict[str, Any] = {
    "ddm": st.fixed_dictionaries(
        {"warm_start": st.integers(0, 40), "warning_threshold": st.floats(0.5, 2.0)}
    ),
    "eddm": st.fixed_dictionaries(
        {
            "warm_start": st.integers(0, 40),
            "alpha": st.floats(0.9, 1.0),
            "beta": st.floats(0.5, 0.9),
        }
    ),
    "hddm_a": st.fixed_dictionaries(
        {
            "drift_confidence": st.sampled_from([0.001, 0.01, 0.1]),
            "warning_confidence": st.sampled_from([0.1, 0.3]),
            "two_sided_test": st.booleans(),
        }
    ),
    "adwin": st.fixed_dictionaries(
        {
            "delta": st.sampled_from([0.002, 0.05, 0.5]),
            "clock": st.integers(1, 40),
            "max_buckets": st.integers(2, 6),
            "min_window_length": st.integers(1, 12),
            "grace_period": st.integers(0, 40),
        }
    ),
    "page_hinkley": st.fixed_dictionaries(
        {
            "min_instances": st.integers(0, 40),
            "delta": st.floats(0.0, 0.1),
            "threshold": st.sampled_from([1.0, 5.0, 50.0]),
            "alpha": st.sampled_from([1.0, 0.999, 1 - 0.0001]),
            "mode": st.sampled_from(["up", "down", "both"]),
        }
    ),
    "kswin": st.fixed_dictionaries(
        {
            "alpha": st.sampled_from([0.005, 0.05, 0.3]),
            "stat_size": st.integers(1, 12),
            "window_size": st.integers(24, 60),
            "seed": st.integers(0, 2**32),
        }
    ),
}


def _check(key: str, params: dict[str, Any], xs: list[float], sizes: list[int], fix: Any) -> None:
    river, one_by_one, chunked = fix
    binary = key in {"ddm", "eddm", "hddm_a"}
    expected = one_by_one(river(key, params), [int(x) for x in xs] if binary else xs)
    arr = np.asarray(xs, dtype=np.float64)
    assert chunked(detectors.create(key, params), arr, sizes) == expected
    assert one_by_one(detectors.create(key, params), xs) == expected
    # Deterministic: a second run from a JSON-restored fresh detector agrees.
    state = json.loads(json.dumps(detectors.create(key, params).to_state(), allow_nan=False))
    assert chunked(detectors.restore(state), arr, sizes[::-1]) == expected


@PROFILE
@given(
    key=st.sampled_from(["ddm", "eddm", "hddm_a"]),
    data=st.data(),
    xs=st.one_of(bits.map(lambda v: [float(x) for x in v]), segmented(binary=True)),
    sizes=chunkings,
)
def test_binary_detectors_match_river(
    key: str, data: st.DataObject, xs: list[float], sizes: list[int], river, one_by_one, chunked
) -> None:
    _check(key, data.draw(PARAMS[key]), xs, sizes, (river, one_by_one, chunked))


@PROFILE
@given(
    key=st.sampled_from(["adwin", "page_hinkley"]),
    data=st.data(),
    xs=st.one_of(reals, segmented(binary=False), segmented(binary=True)),
    sizes=chunkings,
)
def test_real_detectors_match_river(
    key: str, data: st.DataObject, xs: list[float], sizes: list[int], river, one_by_one, chunked
) -> None:
    _check(key, data.draw(PARAMS[key]), xs, sizes, (river, one_by_one, chunked))


@settings(PROFILE, max_examples=50)
@given(
    data=st.data(),
    xs=st.one_of(reals, segmented(binary=False)).map(lambda v: v[:400]),
    sizes=chunkings,
)
def test_kswin_matches_river_with_the_same_seed(
    data: st.DataObject, xs: list[float], sizes: list[int], river, one_by_one, chunked
) -> None:
    params = data.draw(PARAMS["kswin"])
    params["window_size"] = max(params["window_size"], 2 * params["stat_size"])
    _check("kswin", params, xs, sizes, (river, one_by_one, chunked))


extreme = st.floats(-MAX_ABS, MAX_ABS, allow_nan=False, allow_infinity=False)


@settings(PROFILE, max_examples=60)
@given(
    key=st.sampled_from(["adwin", "page_hinkley", "kswin"]),
    xs=st.lists(extreme, max_size=300),
    sizes=chunkings,
)
def test_never_crashes_on_extreme_valid_values(key: str, xs: list[float], sizes: list[int]) -> None:
    det = detectors.create(key, {"seed": 0} if key == "kswin" else {})
    arr = np.asarray(xs, dtype=np.float64)
    pos, i = 0, 0
    while pos < len(arr):
        det.update_many(arr[pos : pos + sizes[i % len(sizes)]])
        pos, i = pos + sizes[i % len(sizes)], i + 1
    json.dumps(det.to_state(), allow_nan=False)
    for x in xs[:20]:
        det.update(x)
