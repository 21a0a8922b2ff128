"""Benchmark of drift statistics: stored-profile tests vs naive scipy, memory, sketch error.

Run ``.venv/bin/python benchmarks/stats_bench.py [--quick]``. Every ratio compares timings taken
in the same run on the same data (medians of repeated calls). Naive scipy re-sorts the raw
reference on every call; ours reads a profile built once. Both use the same p-value method:
``method="auto"`` (exact when both samples have at most 10 000 values, asymptotic above).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from retrigger.stats.drift.chi2 import Chi2Test
from retrigger.stats.drift.ks import KSTest, ks_statistic
from retrigger.stats.evaluate import DriftConfig, evaluate_features
from retrigger.stats.profiles import (
    ProfileOptions,
    categorical_profile,
    numeric_profile,
    profile_to_bytes,
)

REF_SIZES = (10_000, 100_000, 1_000_000)
CUR_SIZES = (1_000, 10_000, 100_000)
TARGETS_1 = {1_000: 100, 10_000: 30, 100_000: 15}  # reference 1e6, one feature
TARGETS_50 = {1_000: 50, 10_000: 20, 100_000: 15}  # reference 1e6, 50 features


def median_time(fn: Callable[[], Any], repeats: int) -> float:
    """Median wall time of ``repeats`` calls (one warm-up call first)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:9.2f} ms"


def verdict(ratio: float, target: float | None) -> str:
    if target is None:
        return "ok (>= 1x)" if ratio >= 1.0 else "SLOWER"
    return f"target {target}x: {'met' if ratio >= target else 'MISSED'}"


def ks_one_feature(g: np.random.Generator, repeats: int) -> None:
    print("\n== KS, one feature: stored profile vs naive scipy.stats.ks_2samp (same p method) ==")
    print(
        f"{'ref':>9} {'cur':>8} {'p method':>10} {'ours':>12} {'naive':>12} {'ratio':>8}  verdict"
    )
    test = KSTest()
    for n_ref in REF_SIZES:
        ref = g.normal(size=n_ref)
        profile = numeric_profile(ref, ProfileOptions(form="sorted"))
        for n_cur in CUR_SIZES:
            cur = g.normal(0.0, 1.0, size=n_cur)  # a typical window: no drift
            ours = median_time(lambda p=profile, c=cur: test.evaluate(p, c), repeats)
            naive = median_time(lambda r=ref, c=cur: stats.ks_2samp(r, c), repeats)
            method = test.evaluate(profile, cur).details["p_method"]
            target = TARGETS_1.get(n_cur) if n_ref == 1_000_000 else None
            ratio = naive / ours
            row = f"{n_ref:>9} {n_cur:>8} {method:>10} {fmt(ours)} {fmt(naive)} {ratio:7.1f}x"
            print(f"{row}  {verdict(ratio, target)}")
    # a drifted large window: scipy's kstwo.sf(d, n) then costs ~100 ms for both sides
    ref, cur = g.normal(size=1_000_000), g.normal(0.01, 1.0, size=100_000)
    profile = numeric_profile(ref, ProfileOptions(form="sorted"))
    ours = median_time(lambda: test.evaluate(profile, cur), repeats)
    p_only = median_time(lambda: stats.kstwo.sf(0.01, 90909.0), repeats)
    naive = median_time(lambda: stats.ks_2samp(ref, cur), repeats)
    print(
        f"  1000000   100000 (0.01 sd shift) ours {fmt(ours)}, naive {fmt(naive)}, "
        f"{naive / ours:.1f}x; scipy kstwo.sf alone {fmt(p_only)} (shared by both)"
    )


def ks_fifty_features(g: np.random.Generator, repeats: int, quick: bool) -> None:
    print("\n== KS, 50 features: evaluate_features(test='ks') vs 50 naive ks_2samp calls ==")
    print(f"{'ref':>9} {'cur':>8} {'ours':>12} {'naive':>12} {'ratio':>8}  verdict")
    config = DriftConfig(test="ks")
    for n_ref in REF_SIZES:
        bases = [g.normal(size=n_ref) for _ in range(5)]  # 5 distinct references, cycled
        refs = {f"f{i}": bases[i % 5] for i in range(50)}
        profiles = {
            name: numeric_profile(r, ProfileOptions(form="sorted")) for name, r in refs.items()
        }
        for n_cur in CUR_SIZES:
            current = {name: g.normal(0.0, 1.0, size=n_cur) for name in refs}
            ours = median_time(
                lambda p=profiles, c=current: evaluate_features(p, c, config), repeats
            )

            def naive(c: dict[str, np.ndarray] = current, rs: dict[str, Any] = refs) -> None:
                for name, r in rs.items():
                    stats.ks_2samp(r, c[name])

            naive_t = median_time(naive, 1 if quick and n_ref == 1_000_000 else repeats)
            target = TARGETS_50.get(n_cur) if n_ref == 1_000_000 else None
            ratio = naive_t / ours
            row = f"{n_ref:>9} {n_cur:>8} {fmt(ours)} {fmt(naive_t)} {ratio:7.1f}x"
            print(f"{row}  {verdict(ratio, target)}")


def chi2_stored(g: np.random.Generator, repeats: int) -> None:
    print("\n== Chi-square with a stored reference vs naive recount of the raw reference ==")
    print(f"{'ref':>9} {'cur':>8} {'ours':>12} {'naive':>12} {'ratio':>8}  verdict")
    labels = np.array([f"cat_{i:02d}" for i in range(20)])
    probs = np.linspace(1.0, 3.0, 20) / np.linspace(1.0, 3.0, 20).sum()
    test = Chi2Test()
    for n_ref in REF_SIZES:
        ref = g.choice(labels, size=n_ref, p=probs)
        profile = categorical_profile(ref)
        for n_cur in (1_000, 10_000):
            cur = g.choice(labels, size=n_cur, p=probs)
            ours = median_time(lambda p=profile, c=cur: test.evaluate(p, c), repeats)

            def naive(r: np.ndarray = ref, c: np.ndarray = cur) -> None:
                cats, rc = np.unique(r, return_counts=True)
                cc = np.array([np.count_nonzero(c == k) for k in cats])
                stats.chi2_contingency(np.vstack((rc, cc)), correction=False)

            naive_t = median_time(naive, repeats)
            target = 40 if n_ref == 1_000_000 else None
            ratio = naive_t / ours
            row = f"{n_ref:>9} {n_cur:>8} {fmt(ours)} {fmt(naive_t)} {ratio:7.1f}x"
            print(f"{row}  {verdict(ratio, target)}")


def memory_and_sketch(g: np.random.Generator) -> None:
    print("\n== Profile size of a 1e6-value numeric reference, and the sketch's KS error ==")
    samplers: dict[str, Callable[[int, float], np.ndarray]] = {
        "normal": lambda n, s: g.normal(s, 1.0, n),
        "lognormal": lambda n, s: g.lognormal(s, 1.0, n),
        "bimodal": lambda n, s: (
            np.where(g.random(n) < 0.4, g.normal(-2, 0.5, n), g.normal(2, 1, n)) + s
        ),
        "rounded(3)": lambda n, s: np.round(g.normal(s, 1.0, n), 3),
    }
    head = f"{'data':>11} {'sorted':>11} {'auto':>18} {'sketch':>9} {'max |D err|':>12}"
    print(f"{head}  target <= 32768 B, <= 1e-4")
    for name, sample in samplers.items():
        ref = sample(1_000_000, 0.0)
        exact = numeric_profile(ref, ProfileOptions(form="sorted"))
        auto = numeric_profile(ref)
        sketch = numeric_profile(ref, ProfileOptions(form="sketch"))
        worst = 0.0
        for m in (1_000, 10_000, 100_000):
            for shift in (0.0, 0.01, 0.1):
                cur = np.sort(sample(m, shift))
                worst = max(worst, abs(ks_statistic(exact, cur) - ks_statistic(sketch, cur)))
        size = len(profile_to_bytes(sketch))
        ok = "met" if size <= 32768 and worst <= 1e-4 else "MISSED"
        auto_desc = f"{len(profile_to_bytes(auto))} B {auto.form.value}"
        exact_size = len(profile_to_bytes(exact))
        print(f"{name:>11} {exact_size:>9} B {auto_desc:>18} {size:>7} B {worst:12.2e}  {ok}")


def evidently_comparison(g: np.random.Generator, quick: bool) -> None:
    print("\n== Drift evaluation vs Evidently's data drift report (same data) ==")
    try:
        import pandas as pd
        from evidently import Report
        from evidently.presets import DataDriftPreset
    except Exception as exc:  # any import problem means: skip
        print(f"skipped: evidently not importable here ({type(exc).__name__}: {exc})")
        return
    n_ref, n_cur, k = (100_000, 10_000, 20) if quick else (1_000_000, 100_000, 20)
    ref = {f"f{i}": g.normal(size=n_ref) for i in range(k)}
    cur = {f"f{i}": g.normal(0.05 * (i % 3), 1.0, size=n_cur) for i in range(k)}
    profiles = {name: numeric_profile(v) for name, v in ref.items()}
    ours = median_time(lambda: evaluate_features(profiles, cur), 3)
    ref_df, cur_df = pd.DataFrame(ref), pd.DataFrame(cur)
    theirs = median_time(lambda: Report([DataDriftPreset()]).run(cur_df, ref_df), 1)
    print(f"{k} numeric features, ref {n_ref}, cur {n_cur}: ours {fmt(ours)}, ", end="")
    print(f"evidently {fmt(theirs)}, ratio {theirs / ours:.1f}x")


def detectors_bench(quick: bool) -> None:
    path = Path(__file__).with_name("detectors_bench.py")
    if not path.exists():
        print("\n(benchmarks/detectors_bench.py not present: skipped)")
        return
    print(f"\n== {path.name} ==", flush=True)
    args = [sys.executable, str(path), *(["--quick"] if quick else [])]
    done = subprocess.run(args, check=False, env=os.environ.copy())
    if done.returncode != 0:
        print(f"{path.name} exited with status {done.returncode}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="fewer repetitions (about 1-2 minutes)"
    )
    args = parser.parse_args()
    repeats = 3 if args.quick else 7
    g = np.random.default_rng(2024)
    print(f"numpy {np.__version__}, mode {'quick' if args.quick else 'full'}, repeats {repeats}")
    ks_one_feature(g, repeats)
    ks_fifty_features(g, max(1, repeats // 2), args.quick)
    chi2_stored(g, repeats)
    memory_and_sketch(g)
    evidently_comparison(g, args.quick)
    detectors_bench(args.quick)


if __name__ == "__main__":
    main()
