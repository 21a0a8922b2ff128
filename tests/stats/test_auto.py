"""The automatic choice of test per feature (the table in retrigger.stats.auto)."""

from __future__ import annotations

import pytest

from retrigger.stats.auto import choose_test
from retrigger.stats.samples import FeatureKind


@pytest.mark.parametrize(
    ("kind", "n_ref", "n_cur", "k", "expected"),
    [
        (FeatureKind.NUMERIC, 500, 100_000, 0, "ks"),
        (FeatureKind.NUMERIC, 100_000, 1_000, 0, "ks"),
        (FeatureKind.NUMERIC, 1_001, 1_001, 0, "wasserstein"),
        (FeatureKind.CATEGORICAL, 800, 50_000, 5, "chi2"),
        (FeatureKind.CATEGORICAL, 5_000, 5_000, 60, "chi2"),
        (FeatureKind.CATEGORICAL, 5_000, 5_000, 10, "jensen_shannon"),
        (FeatureKind.BOOLEAN, 10, 10, 2, "z"),
        (FeatureKind.BOOLEAN, 10**6, 10**6, 2, "z"),
    ],
)
def test_choice(kind: FeatureKind, n_ref: int, n_cur: int, k: int, expected: str) -> None:
    key, why = choose_test(kind, n_ref, n_cur, n_categories=k)
    assert key == expected
    assert why.startswith("auto:")
    assert expected in why
