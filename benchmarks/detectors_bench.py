"""Throughput of the streaming drift detectors' batch API next to River's, same streams.

Usage: ``python benchmarks/detectors_bench.py [--quick]``. For each detector it prints the median
updates/s of ``update_many`` over a seeded stream with change points, River's median updates/s
(one ``update`` call per observation, River's only API) and whether both flagged exactly the same
drift and warning indices. The target is >= 1M updates/s for ADWIN, DDM and Page-Hinkley.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

try:
    from retrigger.stats import detectors
except ImportError:  # running from a checkout without an installed package
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from retrigger.stats import detectors

TARGET = 1_000_000
TARGET_KEYS = ("adwin", "ddm", "page_hinkley")
Indices = tuple[list[int], list[int]]


def _binary_stream(n: int, rng: np.random.Generator) -> np.ndarray:
    """Error stream: error rate 0.2, 0.35, 0.15 then a ramp to 0.4, in four equal parts."""
    t = np.arange(n)
    q = n // 4
    p = np.select(
        [t < q, t < 2 * q, t < 3 * q], [0.2, 0.35, 0.15], 0.15 + 0.25 * (t - 3 * q) / max(q, 1)
    )
    return (rng.random(n) < p).astype(np.float64)


def _real_stream(n: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian stream: mean 0, 1.0, 0.3 then a ramp to 2.0, in four equal parts (sd 1)."""
    t = np.arange(n)
    q = n // 4
    mean = np.select([t < q, t < 2 * q, t < 3 * q], [0.0, 1.0, 0.3], 0.3 + 1.7 * (t - 3 * q) / q)
    return np.asarray(rng.normal(0.0, 1.0, n) + mean, dtype=np.float64)


def _river_detector(key: str, params: dict[str, Any]) -> Any:
    from river import drift

    binary = drift.binary
    hddm_a = getattr(binary, "HDDM_A", None) or binary.HDDMA
    cls = {
        "ddm": binary.DDM,
        "eddm": binary.EDDM,
        "hddm_a": hddm_a,
        "adwin": drift.ADWIN,
        "page_hinkley": drift.PageHinkley,
        "kswin": drift.KSWIN,
    }[key]
    return cls(**params)


def _run_river(key: str, params: dict[str, Any], values: list[float]) -> Indices:
    det = _river_detector(key, params)
    drifts: list[int] = []
    warnings: list[int] = []
    update = det.update
    if hasattr(det, "warning_detected"):
        for i, x in enumerate(values):
            update(x)
            if det.drift_detected:
                drifts.append(i)
            if det.warning_detected:
                warnings.append(i)
    else:
        for i, x in enumerate(values):
            update(x)
            if det.drift_detected:
                drifts.append(i)
    return drifts, warnings


def _run_ours(key: str, params: dict[str, Any], xs: np.ndarray) -> Indices:
    res = detectors.create(key, params).update_many(xs)
    return res.drifts, res.warnings


def _median_rate(fn: Callable[[], Indices], n: int, repeats: int) -> tuple[float, Indices]:
    rates: list[float] = []
    out: Indices = ([], [])
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        rates.append(n / (time.perf_counter() - start))
    return statistics.median(rates), out


def _fmt(rate: float | None) -> str:
    if rate is None:
        return "n/a"
    return f"{rate / 1e6:.2f}M" if rate >= 1e5 else f"{rate / 1e3:.1f}k"


def run(quick: bool) -> None:
    """Benchmark every built-in detector and print one table (``quick``: smaller, fewer runs)."""
    try:
        import river
        import river.drift  # imported here so that no timed run pays for it

        river_version: str | None = getattr(river, "__version__", "?")
    except ImportError:  # pragma: no cover - River is a dev dependency
        river_version = None
    n_main = 200_000 if quick else 1_000_000
    n_kswin = 5_000 if quick else 20_000
    repeats, river_repeats = (3, 1) if quick else (5, 3)
    rng = np.random.default_rng(20240601)
    binary, real = _binary_stream(n_main, rng), _real_stream(n_main, rng)
    cases: list[tuple[str, dict[str, Any], np.ndarray]] = [
        ("adwin", {}, real),
        ("ddm", {}, binary),
        ("page_hinkley", {}, real),
        ("eddm", {}, binary),
        ("hddm_a", {}, binary),
        ("kswin", {"seed": 42}, real[:n_kswin]),
    ]
    print(f"numpy {np.__version__}; River {river_version or 'not installed'}; quick={quick}")
    print(
        f"{'detector':<13}{'n':>9}{'ours upd/s':>12}{'River upd/s':>13}{'ratio':>8}"
        f"{'drifts':>8}{'warnings':>10}  identical"
    )
    missed = []
    for key, params, xs in cases:
        n = xs.shape[0]
        ours, (drifts, warnings) = _median_rate(partial(_run_ours, key, params, xs), n, repeats)
        theirs: float | None = None
        same = "n/a"
        if river_version is not None:
            values = xs.astype(int).tolist() if detectors.get(key).binary else xs.tolist()
            reps = 1 if key == "kswin" else river_repeats
            theirs, ref = _median_rate(partial(_run_river, key, params, values), n, reps)
            same = "yes" if ref == (drifts, warnings) else "NO"
        ratio = f"{ours / theirs:.2f}x" if theirs else "n/a"
        print(
            f"{key:<13}{n:>9}{_fmt(ours):>12}{_fmt(theirs):>13}{ratio:>8}"
            f"{len(drifts):>8}{len(warnings):>10}  {same}"
        )
        if key in TARGET_KEYS and ours < TARGET:
            missed.append(key)
        if same == "NO":
            missed.append(f"{key} (indices differ from River)")
    verdict = "met" if not missed else "MISSED for " + ", ".join(missed)
    print(f"target >= {TARGET / 1e6:.0f}M updates/s via update_many for ADWIN, DDM, PH: {verdict}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="smaller streams, fewer repeats")
    run(quick=parser.parse_args(argv).quick)


if __name__ == "__main__":
    main()
