"""Benchmark of drift statistics: stored-profile tests vs naive scipy and Evidently, memory,
sketch error.

Run ``.venv/bin/python benchmarks/stats_bench.py [--quick]``. Every ratio compares timings taken
in the same run on the same data: the two sides are called alternately (so background load hits
both alike) and each side's median is reported. Naive scipy re-sorts the raw reference on every
call; ours reads a profile built once. Both use the same p-value method: ``method="auto"``
(exact when both samples have at most 10 000 values, asymptotic above). The Evidently section
needs ``evidently`` and ``pandas`` importable (a separate virtualenv; see docs/statistics.md)
and is skipped otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import scipy
from scipy import stats

from retrigger.stats.drift.chi2 import Chi2Test
from retrigger.stats.drift.ks import KSTest, ks_statistic
from retrigger.stats.drift.ks_pvalue import SCIPY_LATTICE, kstwo_sf
from retrigger.stats.evaluate import DriftConfig, evaluate_features
from retrigger.stats.profiles import (
    ProfileOptions,
    build_profile,
    categorical_profile,
    numeric_profile,
    profile_to_bytes,
)

REF_SIZES = (10_000, 100_000, 1_000_000)
CUR_SIZES = (1_000, 10_000, 100_000)
TARGETS_1 = {1_000: 100, 10_000: 30, 100_000: 15}  # reference 1e6, one feature
TARGETS_50 = {1_000: 50, 10_000: 20, 100_000: 15}  # reference 1e6, 50 features
EXACT_CASES = (  # (n_ref, n_cur, shift in sd): both samples <= 10 000, exact p-values
    (1_000, 1_000, 0.0),
    (5_000, 700, 0.0),
    (10_000, 100, 0.0),
    (10_000, 1_000, 0.0),
    (10_000, 3_000, 0.0),
    (10_000, 9_999, 0.0),
    (10_000, 10_000, 0.0),
    (10_000, 1_000, 0.1),
    (10_000, 1_000, 0.3),
)


def _timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def paired_medians(
    ours: Callable[[], Any],
    theirs: Callable[[], Any],
    repeats: int,
    their_repeats: int | None = None,
) -> tuple[float, float]:
    """Medians of ``ours`` and ``theirs`` timed alternately, so that background load hits both.

    Each timed call of ours follows an untimed one: ours is measured in steady state (profiles
    in memory and in cache, as for a worker evaluating window after window), not right after
    ``theirs`` has flushed the CPU caches by sorting a large array. Theirs keeps nothing
    between calls. The cold-cache cost is stated in docs/statistics.md.
    """
    mine: list[float] = []
    other: list[float] = []
    for i in range(max(repeats, their_repeats or repeats)):
        if i < repeats:
            ours()
            mine.append(_timed(ours))
        if i < (their_repeats or repeats):
            other.append(_timed(theirs))
    return statistics.median(mine), statistics.median(other)


def fmt(seconds: float) -> str:
    return f"{seconds * 1e3:9.2f} ms"


def verdict(ratio: float, target: float | None) -> str:
    if target is None:
        return "ok (>= 1x)" if ratio >= 1.0 else "SLOWER"
    return f"target {target}x: {'met' if ratio >= target else 'MISSED'}"


def _p_diff(ours: float | None, theirs: float) -> str:
    """Relative difference of two p-values (absolute below 1e-300)."""
    if ours is None:
        return f"{'n/a':>9}"
    return f"{abs(ours - theirs) / max(abs(theirs), 1e-300):9.1e}"


def ks_one_feature(g: np.random.Generator, repeats: int) -> None:
    print("\n== KS, one feature: stored profile vs naive scipy.stats.ks_2samp (same p method) ==")
    head = f"{'ref':>9} {'cur':>8} {'p method':>10} {'ours':>12} {'naive':>12} {'ratio':>8}"
    print(f"{head} {'|D diff|':>9} {'p rel diff':>10}  verdict")
    test = KSTest()
    for n_ref in REF_SIZES:
        ref = g.normal(size=n_ref)
        profile = numeric_profile(ref, ProfileOptions(form="sorted"))
        for n_cur in CUR_SIZES:
            cur = g.normal(0.0, 1.0, size=n_cur)  # a typical window: no drift
            ours, naive = paired_medians(
                partial(test.evaluate, profile, cur),
                partial(stats.ks_2samp, ref, cur),
                repeats,
            )
            target = TARGETS_1.get(n_cur) if n_ref == 1_000_000 else None
            print(_ks_row(n_ref, n_cur, test, profile, ref, cur, ours, naive, target))
    print("  drifted windows (2.2 <= n D^2 < 370: scipy's kstwo.sf at n ~ 1e5 takes ~100 ms):")
    ref = g.normal(size=1_000_000)
    profile = numeric_profile(ref, ProfileOptions(form="sorted"))
    for shift in (0.02, 0.1):
        cur = g.normal(shift, 1.0, size=100_000)
        ours, naive = paired_medians(
            partial(test.evaluate, profile, cur), partial(stats.ks_2samp, ref, cur), repeats
        )
        print(_ks_row(1_000_000, 100_000, test, profile, ref, cur, ours, naive, None, shift))
    d, n = 0.01, 90909.0
    p_ours, p_scipy = paired_medians(lambda: kstwo_sf(d, n), lambda: stats.kstwo.sf(d, n), 3)
    print(
        f"  kstwo.sf({d}, {n:.0f}) alone: scipy {fmt(p_scipy)}, ours {fmt(p_ours)} "
        f"({p_scipy / p_ours:.1f}x), rel diff {_p_diff(kstwo_sf(d, n), stats.kstwo.sf(d, n))}"
    )


def _ks_row(
    n_ref: int,
    n_cur: int,
    test: KSTest,
    profile: Any,
    ref: np.ndarray,
    cur: np.ndarray,
    ours: float,
    naive: float,
    target: float | None,
    shift: float = 0.0,
) -> str:
    result = test.evaluate(profile, cur)
    expected = stats.ks_2samp(ref, cur)
    d_diff = abs((result.statistic or 0.0) - float(expected.statistic))
    method = result.details["p_method"]
    ratio = naive / ours
    row = f"{n_ref:>9} {n_cur:>8} {method:>10} {fmt(ours)} {fmt(naive)} {ratio:7.1f}x"
    row += f" {d_diff:9.1e} {_p_diff(result.p_value, float(expected.pvalue)):>10}"
    label = f" (shift {shift} sd)" if shift else ""
    return f"{row}  {verdict(ratio, target)}{label}"


def ks_exact_regime(g: np.random.Generator, repeats: int) -> None:
    print("\n== KS where both p-values are exact (both samples <= 10 000): never slower ==")
    source = "scipy's compiled lattice routine" if SCIPY_LATTICE else "our numpy recurrences"
    print(f"   (unequal sizes: {source}, or our column recurrence where it is faster, i.e.")
    print("   wide bands; equal sizes: our closed-form series)")
    head = f"{'ref':>9} {'cur':>8} {'shift':>6} {'ours':>12} {'naive':>12} {'ratio':>8}"
    print(f"{head} {'|D diff|':>9} {'p rel diff':>10}  verdict")
    test = KSTest()
    for n_ref, n_cur, shift in EXACT_CASES:
        ref, cur = g.normal(size=n_ref), g.normal(shift, 1.0, size=n_cur)
        profile = numeric_profile(ref, ProfileOptions(form="sorted"))
        ours, naive = paired_medians(
            partial(test.evaluate, profile, cur),
            partial(stats.ks_2samp, ref, cur),
            repeats,
        )
        result = test.evaluate(profile, cur)
        expected = stats.ks_2samp(ref, cur)
        d_diff = abs((result.statistic or 0.0) - float(expected.statistic))
        ratio = naive / ours
        row = f"{n_ref:>9} {n_cur:>8} {shift:>6} {fmt(ours)} {fmt(naive)} {ratio:7.1f}x"
        row += f" {d_diff:9.1e} {_p_diff(result.p_value, float(expected.pvalue)):>10}"
        print(f"{row}  {verdict(ratio, None)}")


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

            def naive(c: dict[str, np.ndarray] = current, rs: dict[str, Any] = refs) -> None:
                for name, r in rs.items():
                    stats.ks_2samp(r, c[name])

            ours, naive_t = paired_medians(
                partial(evaluate_features, profiles, current, config),
                naive,
                repeats,
                1 if quick and n_ref == 1_000_000 else repeats,
            )
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

            def naive(r: np.ndarray = ref, c: np.ndarray = cur) -> None:
                cats, rc = np.unique(r, return_counts=True)
                cc = np.array([np.count_nonzero(c == k) for k in cats])
                stats.chi2_contingency(np.vstack((rc, cc)), correction=False)

            ours, naive_t = paired_medians(partial(test.evaluate, profile, cur), naive, repeats)
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


EVIDENTLY_SIZES = ((10_000, 1_000), (10_000, 10_000), (100_000, 1_000), (100_000, 10_000))
EVIDENTLY_TARGET = 100  # ours vs Evidently for current windows of at most 1e4 rows


def _evidently_runner(
    ref_df: Any, cur_df: Any, numeric: list[str], categorical: list[str]
) -> tuple[str, Callable[[], Any], Callable[[Any], dict[str, float]]]:
    """Evidently's data drift report for the 0.7 API (``Report`` + ``evidently.presets``) or
    the 0.4-0.6 one (``evidently.report`` + ``evidently.metric_preset``).

    Returns (API, run, scores). Like ours, Evidently gets its reference prepared once (0.7: a
    ``Dataset``); ``run`` converts the window and computes the report; ``scores`` reads each
    column's drift score from the result. Raises ImportError when neither API imports.
    """
    try:
        from evidently import DataDefinition, Dataset, Report
        from evidently.presets import DataDriftPreset
    except ImportError:
        from evidently import ColumnMapping  # type: ignore[attr-defined,unused-ignore]
        from evidently.metric_preset import (  # type: ignore[import-not-found,unused-ignore]
            DataDriftPreset as LegacyPreset,
        )
        from evidently.report import (  # type: ignore[import-not-found,unused-ignore]
            Report as LegacyReport,
        )

        mapping = ColumnMapping(numerical_features=numeric, categorical_features=categorical)

        def run_legacy() -> Any:
            report = LegacyReport(metrics=[LegacyPreset()])
            report.run(reference_data=ref_df, current_data=cur_df, column_mapping=mapping)
            return report

        def scores_legacy(report: Any) -> dict[str, float]:
            for metric in report.as_dict()["metrics"]:
                by_column = metric.get("result", {}).get("drift_by_columns")
                if by_column:
                    return {k: float(v["drift_score"]) for k, v in by_column.items()}
            return {}

        return "Report(metrics=[DataDriftPreset()]), 0.4-0.6 API", run_legacy, scores_legacy

    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    ref_ds = Dataset.from_pandas(ref_df, data_definition=definition)

    def run() -> Any:
        cur_ds = Dataset.from_pandas(cur_df, data_definition=definition)
        return Report([DataDriftPreset()]).run(cur_ds, ref_ds)

    def scores(snapshot: Any) -> dict[str, float]:
        out = {}
        for metric in snapshot.dict()["metrics"]:
            name = str(metric.get("metric_name", ""))
            if name.startswith("ValueDrift(column="):
                out[name.split("=", 1)[1].split(",", 1)[0]] = float(metric["value"])
        return out

    return "Report([DataDriftPreset()]), 0.7 API", run, scores


def evidently_comparison(g: np.random.Generator, repeats: int) -> None:
    print("\n== Drift evaluation vs Evidently's data drift report (same data, same tests) ==")
    try:
        import evidently
        import pandas as pd  # type: ignore[import-untyped,unused-ignore]

        _evidently_runner(pd.DataFrame({"x": [0.0, 1.0]}), None, ["x"], [])  # either API?
    except Exception as exc:  # any import problem means: skip
        print(f"skipped: evidently not importable here ({type(exc).__name__}: {exc})")
        print("  (it is kept out of the project's venv: see docs/statistics.md, Performance)")
        return
    numeric = [f"x{i}" for i in range(10)]
    categorical = [f"k{i}" for i in range(5)]
    kinds = dict.fromkeys(numeric, "numeric") | dict.fromkeys(categorical, "categorical")
    labels = np.array([f"cat_{i}" for i in range(8)])
    probs = np.linspace(1.0, 2.0, 8) / np.linspace(1.0, 2.0, 8).sum()
    # Evidently's choice for references above 1000 rows: normed Wasserstein for numeric
    # columns, Jensen-Shannon for categorical ones; ours is told to use the same tests.
    js = dict.fromkeys(categorical, "jensen_shannon")
    config = DriftConfig(test="wasserstein", feature_tests=js)
    print(
        f"10 numeric + 5 categorical (8 labels) features, evidently {evidently.__version__}, "
        f"pandas {pd.__version__}, medians of {repeats} alternating calls"
    )
    head = f"{'ref':>7} {'cur':>6} {'ours':>12} {'evidently':>12} {'ratio':>7} {'ours cold':>12}"
    print(f"{head} {'ratio':>6} {'|W diff|':>8} {'|JS diff|':>9}  verdict")
    api = ""
    for n_ref, n_cur in EVIDENTLY_SIZES:
        ref = {c: g.normal(size=n_ref) for c in numeric}
        ref |= {c: g.choice(labels, size=n_ref, p=probs) for c in categorical}
        cur = {c: g.normal(0.05 * (i % 3), 1.0, size=n_cur) for i, c in enumerate(numeric)}
        cur |= {c: g.choice(labels, size=n_cur, p=probs) for c in categorical}
        profiles = {c: build_profile(ref[c], kinds[c]) for c in ref}
        frames = [
            pd.DataFrame({c: v if c in numeric else v.astype(object) for c, v in data.items()})
            for data in (ref, cur)
        ]
        api, run, scores = _evidently_runner(frames[0], frames[1], numeric, categorical)
        ours, theirs = paired_medians(
            partial(evaluate_features, profiles, cur, config), run, repeats
        )

        def cold(r: dict[str, np.ndarray] = ref, c: dict[str, np.ndarray] = cur) -> None:
            built = {name: build_profile(r[name], kinds[name]) for name in r}
            evaluate_features(built, c, config)

        cold_t = statistics.median(_timed(cold) for _ in range(repeats))
        result = evaluate_features(profiles, cur, config).features
        theirs_by_column = scores(run())
        # Evidently's JS distance uses natural logarithms, ours base 2: ours x sqrt(ln 2)
        natural = float(np.sqrt(np.log(2.0)))
        factor: dict[str, float] = {c: 1.0 if c in numeric else natural for c in ref}
        diff = {
            c: abs(float(result[c].result.statistic or 0.0) * factor[c] - theirs_by_column[c])
            for c in ref
            if c in theirs_by_column
        }
        w_diff = max((v for c, v in diff.items() if c in numeric), default=float("nan"))
        js_diff = max((v for c, v in diff.items() if c in categorical), default=float("nan"))
        ratio = theirs / ours
        target = EVIDENTLY_TARGET if n_cur <= 10_000 else None
        row = f"{n_ref:>7} {n_cur:>6} {fmt(ours)} {fmt(theirs)} {ratio:6.0f}x {fmt(cold_t)}"
        row += f" {theirs / cold_t:5.0f}x {w_diff:8.1e} {js_diff:9.1e}"
        print(f"{row}  {verdict(ratio, target)}")
    print(f"  evidently: {api}; reference prepared once, window conversion timed. ours: stored")
    print("  profiles; 'cold': building the profiles from the raw reference as well, each call.")
    print("  |W diff|, |JS diff|: largest gap between our and Evidently's per-column scores.")


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
    threads = ", ".join(
        f"{k}={os.environ[k]}"
        for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")
        if k in os.environ
    )
    print(
        f"numpy {np.__version__}, scipy {scipy.__version__}, "
        f"mode {'quick' if args.quick else 'full'}, repeats {repeats}"
        + (f", {threads}" if threads else "")
    )
    ks_one_feature(g, repeats)
    ks_exact_regime(g, repeats)
    ks_fifty_features(g, 3 if args.quick else 5, args.quick)
    chi2_stored(g, repeats)
    memory_and_sketch(g)
    evidently_comparison(g, 3 if args.quick else 5)
    detectors_bench(args.quick)


if __name__ == "__main__":
    main()
