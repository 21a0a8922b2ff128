"""Our detectors flag exactly River's drift and warning indices, one by one and in batches."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from retrigger.stats import detectors

BINARY = ("bern_abrupt", "bern_gradual", "bern_none", "bern_rare")
REAL = ("gauss_abrupt", "gauss_gradual", "gauss_none", "gauss_scale")
SEEDS = (0, 1)
N = 4000
N_KSWIN = 1200

# (key, params, streams): River's defaults first, then variants that exercise other branches.
CASES: list[tuple[str, dict[str, Any], tuple[str, ...]]] = [
    ("ddm", {}, BINARY),
    ("ddm", {"warm_start": 5, "warning_threshold": 1.0, "drift_threshold": 1.5}, BINARY[:2]),
    ("eddm", {}, BINARY),
    ("eddm", {"alpha": 0.8, "beta": 0.75, "warm_start": 10}, BINARY[:2]),
    ("hddm_a", {}, BINARY),
    ("hddm_a", {"two_sided_test": True, "warning_confidence": 0.05}, BINARY),
    ("adwin", {}, REAL + BINARY[:2]),
    ("adwin", {"clock": 1, "delta": 0.05, "grace_period": 0, "min_window_length": 1}, REAL[:2]),
    ("adwin", {"max_buckets": 2, "clock": 7}, REAL[:2] + BINARY[:1]),
    ("page_hinkley", {}, REAL + BINARY[:2]),
    ("page_hinkley", {"mode": "up", "threshold": 10.0}, REAL[:2]),
    ("page_hinkley", {"mode": "down", "threshold": 10.0, "alpha": 1.0}, REAL[:2]),
    ("kswin", {"seed": 42}, REAL + BINARY[:1]),
    ("kswin", {"seed": 7, "alpha": 0.05, "window_size": 60, "stat_size": 20}, REAL[:2]),
]

PARAMS = [
    pytest.param(key, params, name, seed, id=f"{key}-{json.dumps(params)}-{name}-{seed}")
    for key, params, names in CASES
    for name in names
    for seed in SEEDS
]

_RIVER_CACHE: dict[str, tuple[list[int], list[int]]] = {}


def _river(river: Any, one_by_one: Any, key: str, params: dict[str, Any], xs: np.ndarray) -> Any:
    tag = f"{key}{sorted(params.items())}{hash(xs.tobytes())}"
    if tag not in _RIVER_CACHE:
        # River gets plain Python numbers (ints for binary streams), as a user would pass them.
        values = xs.astype(int).tolist() if key in {"ddm", "eddm", "hddm_a"} else xs.tolist()
        _RIVER_CACHE[tag] = one_by_one(river(key, params), values)
    return _RIVER_CACHE[tag]


@pytest.mark.parametrize(("key", "params", "name", "seed"), PARAMS)
def test_update_one_by_one_matches_river(
    key: str, params: dict[str, Any], name: str, seed: int, stream, river, one_by_one
) -> None:
    xs = stream(name, seed, N_KSWIN if key == "kswin" else N)
    expected = _river(river, one_by_one, key, params, xs)
    assert one_by_one(detectors.create(key, params), xs.tolist()) == expected


@pytest.mark.parametrize(("key", "params", "name", "seed"), PARAMS)
def test_update_many_in_chunks_matches_river(
    key: str, params: dict[str, Any], name: str, seed: int, stream, river, one_by_one, chunked
) -> None:
    xs = stream(name, seed, N_KSWIN if key == "kswin" else N)
    expected = _river(river, one_by_one, key, params, xs)
    assert chunked(detectors.create(key, params), xs, [len(xs)]) == expected
    sizes = np.random.default_rng(seed).integers(0, 900, 40).tolist()
    assert chunked(detectors.create(key, params), xs, [1, 0, 31, 2, 513, *sizes]) == expected


@pytest.mark.parametrize("key", ["ddm", "eddm", "hddm_a", "adwin", "page_hinkley", "kswin"])
def test_streams_with_detections_are_covered(key: str, stream, river, one_by_one) -> None:
    """Guard against vacuous equivalence: the default detectors do fire on the test streams."""
    params = {"seed": 42} if key == "kswin" else {}
    name = "gauss_abrupt" if key in {"adwin", "page_hinkley", "kswin"} else "bern_abrupt"
    xs = stream(name, 0, N_KSWIN if key == "kswin" else N)
    drifts, warnings = _river(river, one_by_one, key, params, xs)
    assert drifts
    if key in {"ddm", "eddm", "hddm_a"}:
        assert warnings


def test_long_streams_match_river_for_fast_detectors(stream, river, one_by_one) -> None:
    """ADWIN and Page-Hinkley over 200k observations (many blocks, deep bucket rows)."""
    rng = np.random.default_rng(11)
    xs = rng.normal(0.0, 1.0, 200_000) + np.repeat(rng.normal(0.0, 0.4, 20), 10_000)
    for key in ("adwin", "page_hinkley"):
        expected, _ = one_by_one(river(key), xs.tolist())
        assert detectors.create(key).update_many(xs).drifts == expected


@pytest.mark.parametrize("offset", [0.0, 1e6, -3e9])
def test_adwin_cancellation_prone_streams(offset: float, river, one_by_one) -> None:
    """Large offsets with tiny noise stress the float sums; indices still agree bit for bit."""
    rng = np.random.default_rng(3)
    xs = offset + np.concatenate([rng.normal(0.0, 1e-3, 20_000), rng.normal(5e-4, 1e-3, 20_000)])
    for params in ({}, {"delta": 0.3, "clock": 3}):
        expected, _ = one_by_one(river("adwin", params), xs.tolist())
        assert detectors.create("adwin", params).update_many(xs).drifts == expected


def test_adwin_integer_and_tied_values(river, one_by_one) -> None:
    rng = np.random.default_rng(8)
    xs = np.concatenate([rng.integers(0, 2, 3000), rng.integers(4, 8, 3000), np.full(3000, 3)])
    expected, _ = one_by_one(river("adwin"), xs.tolist())
    assert expected
    assert detectors.create("adwin").update_many(xs).drifts == expected
    assert one_by_one(detectors.create("adwin"), xs.tolist())[0] == expected
