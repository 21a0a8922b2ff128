"""Fixtures shared by the drift-detector tests: seeded streams and River twins."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pytest

Indices = tuple[list[int], list[int]]

BINARY_STREAMS = ("bern_abrupt", "bern_gradual", "bern_none", "bern_rare")
REAL_STREAMS = ("gauss_abrupt", "gauss_gradual", "gauss_none", "gauss_scale")


def make_stream(name: str, seed: int, n: int) -> np.ndarray:
    """Seeded test streams: Bernoulli error streams (0/1) and Gaussian real-valued streams."""
    rng = np.random.default_rng([seed, sum(map(ord, name))])
    t = np.arange(n)
    ramp = np.clip((t - 0.4 * n) / (0.3 * n), 0.0, 1.0)  # 0 before 40 %, 1 after 70 %
    if name.startswith("bern"):
        p = {
            "bern_abrupt": np.where(t < n // 2, 0.2, 0.5),
            "bern_gradual": 0.1 + 0.3 * ramp,
            "bern_none": np.full(n, 0.3),
            "bern_rare": np.where(t < n // 2, 0.02, 0.1),
        }[name]
        return (rng.random(n) < p).astype(np.float64)
    base = rng.normal(0.0, 1.0, n)
    return {
        "gauss_abrupt": base + np.where(t < n // 2, 0.0, 1.5),
        "gauss_gradual": base + 2.0 * ramp,
        "gauss_none": 5.0 + 2.0 * base,
        "gauss_scale": base * np.where(t < n // 2, 1.0, 3.0),
    }[name]


def river_twin(key: str, params: Mapping[str, Any] | None = None) -> Any:
    """River's detector for one of our plugin keys (River 0.26 names HDDM_A ``HDDMA``)."""
    river_drift = pytest.importorskip("river.drift")
    river_binary = pytest.importorskip("river.drift.binary")
    hddm_a = getattr(river_binary, "HDDM_A", None) or river_binary.HDDMA
    cls = {
        "ddm": river_binary.DDM,
        "eddm": river_binary.EDDM,
        "hddm_a": hddm_a,
        "adwin": river_drift.ADWIN,
        "page_hinkley": river_drift.PageHinkley,
        "kswin": river_drift.KSWIN,
    }[key]
    return cls(**dict(params or {}))


def run_one_by_one(det: Any, xs: Sequence[float]) -> Indices:
    """Drift and warning indices from per-observation ``update`` calls (ours or River's)."""
    drifts: list[int] = []
    warnings: list[int] = []
    for i, x in enumerate(xs):
        det.update(x)
        if det.drift_detected:
            drifts.append(i)
        if getattr(det, "warning_detected", False):
            warnings.append(i)
    return drifts, warnings


def run_chunked(det: Any, xs: np.ndarray, sizes: Sequence[int]) -> Indices:
    """Indices from ``update_many`` over consecutive chunks (sizes cycle until ``xs`` ends)."""
    drifts: list[int] = []
    warnings: list[int] = []
    pos, i = 0, 0
    while pos < len(xs):
        size = sizes[i % len(sizes)]
        res = det.update_many(xs[pos : pos + size])
        drifts += [pos + j for j in res.drifts]
        warnings += [pos + j for j in res.warnings]
        pos, i = pos + size, i + 1
    return drifts, warnings


@pytest.fixture(scope="session")
def stream() -> Callable[[str, int, int], np.ndarray]:
    return make_stream


@pytest.fixture(scope="session")
def river() -> Callable[..., Any]:
    return river_twin


@pytest.fixture(scope="session")
def one_by_one() -> Callable[[Any, Sequence[float]], Indices]:
    return run_one_by_one


@pytest.fixture(scope="session")
def chunked() -> Callable[[Any, np.ndarray, Sequence[int]], Indices]:
    return run_chunked
