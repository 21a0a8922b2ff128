"""Internals behind the equivalence: exact kernels, ADWIN buckets, KSWIN's KS statistic."""

from __future__ import annotations

import math
import struct
from typing import Any

import numpy as np
import pytest
from scipy import stats as sps

from retrigger.stats import detectors
from retrigger.stats.detectors import _adwin_batch, _kernels
from retrigger.stats.detectors.kswin import ks_statistics


def test_running_mean_is_rivers_recurrence_bit_for_bit() -> None:
    xs = np.random.default_rng(0).normal(3.0, 5.0, 5000)
    got = _kernels.running_mean(0.25, 7, xs)
    mean, n, expected = 0.25, 7.0, []
    for x in xs.tolist():
        n += 1.0
        mean += (1.0 / n) * (x - mean)
        expected.append(mean)
    assert got.tolist() == expected


def test_cumsum_is_sequential_like_a_running_total() -> None:
    xs = np.random.default_rng(1).normal(0.0, 1e8, 10_000) + 0.1
    total, expected = 0.5, []
    for x in xs.tolist():
        total += x
        expected.append(total)
    assert np.cumsum(np.concatenate(([0.5], xs)))[1:].tolist() == expected


def test_fading_sums_follow_page_hinkleys_operation_order() -> None:
    devs = np.random.default_rng(2).normal(size=3000)
    got = _kernels.fading_sums(1.5, devs, 0.9999, 0.005, minus=True)
    s, expected = 1.5, []
    for d in devs.tolist():
        s = 0.9999 * s + d - 0.005
        expected.append(s)
    assert got.tolist() == expected


def test_latest_best_replaces_on_ties() -> None:
    values = np.array([3.0, 2.0, 2.0, 5.0, 1.0, 1.0, 4.0])
    assert _kernels.latest_best(values, math.inf, None, lower=True).tolist() == [
        0,
        1,
        2,
        2,
        4,
        5,
        5,
    ]
    assert _kernels.latest_best(values, 4.0, None, lower=False).tolist() == [-1, -1, -1, 3, 3, 3, 3]


def test_ln_matches_ieee_for_rusts_edge_cases() -> None:
    assert _kernels.ln(0.0) == -math.inf
    assert math.isnan(_kernels.ln(-1.0))
    assert _kernels.ln(math.e) == math.log(math.e)


@pytest.mark.parametrize("m", [1, 2, 3, 5, 9])
def test_adwin_row_lengths_follow_the_merge_rule(m: int) -> None:
    rows: list[int] = [0]
    for t in range(1, 3000):
        rows[0] += 1
        i = 0
        while rows[i] == m + 1:
            rows[i] -= 2
            if i + 1 == len(rows):
                rows.append(0)
            rows[i + 1] += 1
            i += 1
        assert _adwin_batch.row_lengths(t, m) == rows


def _decode_rust_adwin(blob: bytes) -> dict[str, Any]:
    """River 0.26's serde/bincode layout of its Rust ``AdaptiveWindowing`` (see adwin.rs)."""
    off = 0

    def read(fmt: str) -> tuple[Any, ...]:
        nonlocal off
        out = struct.unpack_from("<" + fmt, blob, off)
        off += struct.calcsize("<" + fmt)
        return out

    _, _, _, _, _, total, variance, width, _ = read("dIQdddddd")
    _, _, tick, _ = read("iiii")
    rows = []
    for _ in range(read("Q")[0]):
        _, used = read("QQ")
        totals = read(f"{read('Q')[0]}d")
        read(f"{read('Q')[0]}d")
        rows.append(list(totals[:used]))
    return {"total": total, "variance": variance, "width": width, "tick": tick, "rows": rows}


@pytest.mark.parametrize("n", [1, 31, 32, 1000, 4097, 20_000])
@pytest.mark.parametrize("max_buckets", [2, 5])
def test_adwin_buckets_equal_rivers_rust_state(n: int, max_buckets: int) -> None:
    rust = pytest.importorskip("river._river_rust.drift")
    xs = np.random.default_rng(n).normal(3.0, 2.0, n)
    helper = rust.AdaptiveWindowing(
        delta=1e-300, clock=32, max_buckets=max_buckets, min_window_length=5, grace_period=10
    )
    for x in xs.tolist():
        helper.update(x)
    try:
        river_state = _decode_rust_adwin(helper.__getstate__())
    except (AttributeError, struct.error):  # pragma: no cover - another River layout
        pytest.skip("River's ADWIN state layout is not the 0.26 one")
    if river_state["width"] != n or river_state["tick"] != n:  # pragma: no cover
        pytest.skip("River's ADWIN state layout is not the 0.26 one")
    for batch in (True, False):
        ours = detectors.ADWIN(delta=1e-300, max_buckets=max_buckets)
        if batch:
            ours.update_many(xs)
        else:
            for x in xs.tolist():
                ours.update(x)
        stats = ours.to_state()["stats"]
        assert stats["n"] == n
        assert stats["total"] == river_state["total"]
        assert stats["variance"] == river_state["variance"]
        assert stats["rows"] == river_state["rows"]


def test_adwin_with_one_bucket_per_row() -> None:
    """max_buckets=1 works (River's Rust code panics when it deletes after such a detection)."""
    rng = np.random.default_rng(4)
    xs = np.concatenate([rng.normal(0, 1, 3000), rng.normal(2, 1, 3000)])
    batch = detectors.ADWIN(max_buckets=1).update_many(xs).drifts
    one = detectors.ADWIN(max_buckets=1)
    assert [i for i, x in enumerate(xs.tolist()) if one.update(x)] == batch
    assert batch
    assert 3000 <= batch[0] < 3200


@pytest.mark.filterwarnings("ignore:ks_2samp. Exact calculation unsuccessful:RuntimeWarning")
@pytest.mark.parametrize("ties", [False, True])
def test_ks_statistics_equal_scipys(ties: bool) -> None:
    rng = np.random.default_rng(5)
    size = 30
    a = rng.normal(0, 1, (300, size))
    b = rng.normal(0.4, 1, (300, size))
    if ties:
        a, b = np.round(a), np.round(b)
        b[:, :3] = -0.0
        a[:, :3] = 0.0
    h = ks_statistics(a, b)
    for i in range(a.shape[0]):
        res = sps.ks_2samp(a[i], b[i], method="auto")
        assert res.statistic == h[i] * 1.0 / size


def test_kswin_sampling_is_pythons_random_sample() -> None:
    """Documented contract: one ``Random(seed).sample(range(W - S), S)`` per test."""
    import random

    det = detectors.KSWIN(seed=11, window_size=40, stat_size=10)
    det.update_many(np.zeros(45))
    rng = random.Random(11)
    for _ in range(6):  # the window is full from the 40th observation: 6 tests
        rng.sample(range(30), 10)
    assert det._rng.getstate() == rng.getstate()
