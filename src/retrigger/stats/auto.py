"""``test: auto``: the drift test chosen for a feature from its kind and the sample sizes.

=========== ========================================== ================== =====================
kind        condition                                  test               drifts when
=========== ========================================== ================== =====================
numeric     min(n_ref, n_cur) <= 1000                  ``ks``             p < alpha, D >= 0.05
numeric     both samples > 1000                        ``wasserstein``    W / sd_ref >= 0.1
categorical min(n_ref, n_cur) <= 1000 or n_eff < 100 k ``chi2``           p < alpha, V >= 0.1
categorical otherwise                                  ``jensen_shannon`` JS >= 0.1
boolean     always                                     ``z``              p < alpha, h >= 0.1
=========== ========================================== ================== =====================

(n_eff = n_ref n_cur / (n_ref + n_cur); k = number of categories in either sample.)

Why: at small n a p-value is what separates drift from sampling noise, so a test with one is
used; at large n every p-value is tiny (a 0.02 sd shift is "significant" at n = 1e6), so
materiality decides and a distance with a meaningful scale is used. A distance decides alone
only where its own noise is far below its threshold: W's noise is about 1/sqrt(n_eff) (under
0.05 once both samples exceed 1000); JS's noise is about sqrt((k-1) / (8 ln2 n_eff)), hence the
100-rows-per-category rule. Evidently switches on the reference size alone (KS below 1000
reference rows, Wasserstein above); keying on both sizes avoids alarms from small current windows
against a large reference.
"""

from __future__ import annotations

from retrigger.stats.samples import FeatureKind

SMALL_SAMPLE = 1000
ROWS_PER_CATEGORY = 100


def choose_test(
    kind: FeatureKind, n_ref: int, n_cur: int, *, n_categories: int = 2
) -> tuple[str, str]:
    """The test key for a feature and a one-line reason (recorded in every finding)."""
    small = min(n_ref, n_cur)
    if kind is FeatureKind.BOOLEAN:
        return "z", "auto: boolean feature -> two-proportion z-test"
    if kind is FeatureKind.NUMERIC:
        if small <= SMALL_SAMPLE:
            return "ks", f"auto: numeric, min(n_ref, n_cur) = {small} <= {SMALL_SAMPLE} -> ks"
        return "wasserstein", f"auto: numeric, both samples > {SMALL_SAMPLE} -> wasserstein"
    n_eff = n_ref * n_cur / (n_ref + n_cur) if n_ref + n_cur else 0.0
    if small <= SMALL_SAMPLE or n_eff < ROWS_PER_CATEGORY * n_categories:
        return "chi2", (
            f"auto: categorical, min(n) = {small}, n_eff = {n_eff:.0f} for {n_categories} "
            f"categories (needs > {SMALL_SAMPLE} and >= {ROWS_PER_CATEGORY} per category "
            "for a distance) -> chi2"
        )
    return "jensen_shannon", (
        f"auto: categorical, both samples > {SMALL_SAMPLE} and n_eff = {n_eff:.0f} >= "
        f"{ROWS_PER_CATEGORY} x {n_categories} categories -> jensen_shannon"
    )
