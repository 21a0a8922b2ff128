"""Vectorised ADWIN: all cut checks of a block evaluated at once, bit-identical to River.

See ``run_block`` for why the bucket structure is a closed-form function of the update count.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from ._base import FloatArray, IntArray
from ._kernels import ln

__all__ = ["Config", "Window", "delta_prime", "row_lengths", "run_block"]

_CELLS = 1 << 17


class Window(NamedTuple):
    """ADWIN state between detections: insertions, sum, Welford sum of squares, bucket rows."""

    n: int
    total: float
    variance: float
    rows: list[list[float]]


class Config(NamedTuple):
    delta: float
    clock: int
    max_buckets: int
    min_window_length: int
    grace_period: int


@functools.lru_cache(maxsize=4096)
def delta_prime(width: float, delta: float) -> float:
    """``ln(2 ln(width) / delta)`` with libm's log, as River's Rust ``f64::ln``."""
    return ln(2.0 * ln(width) / delta)


def _his(t: IntArray, levels: int, m: int) -> IntArray:
    """``hi[:, i]`` = level-``i`` blocks formed after ``t`` insertions, for ``i <= levels``."""
    hi = np.zeros((t.shape[0], levels + 1), dtype=np.int64)
    hi[:, 0] = t
    for i in range(levels):
        hi[:, i + 1] = np.maximum((hi[:, i] - m + 1) // 2, 0)
    return hi


def _n_rows(t: int, m: int) -> int:
    """Rows River has allocated after ``t`` insertions (row 0 always exists)."""
    rows, h = 1, (t - m + 1) // 2
    while h > 0:
        rows, h = rows + 1, (h - m + 1) // 2
    return rows


def row_lengths(t: int, m: int) -> list[int]:
    """Bucket count of each row after ``t`` insertions without a detection."""
    rows = _n_rows(t, m)
    hi = _his(np.array([t], dtype=np.int64), rows, m)[0]
    return [int(hi[i] - 2 * hi[i + 1]) for i in range(rows)]


def _levels(win: Window, xs: FloatArray, rows: int, m: int) -> tuple[FloatArray, IntArray]:
    """Flat level lists (existing buckets + pairwise sums of the level below) and offsets.

    Level ``i`` starts at global block index ``lo_i(n)`` of the incoming window (``bases``).
    """
    parts: list[FloatArray] = []
    cur = np.concatenate((np.asarray(win.rows[0], dtype=np.float64), xs))
    for i in range(rows):
        parts.append(cur)
        if i + 1 < rows:
            half = cur.shape[0] // 2
            pairs = cur[0 : 2 * half : 2] + cur[1 : 2 * half : 2]
            below = win.rows[i + 1] if i + 1 < len(win.rows) else []
            cur = np.concatenate((np.asarray(below, dtype=np.float64), pairs))
    offsets = np.zeros(rows, dtype=np.int64)
    offsets[1:] = np.cumsum([p.shape[0] for p in parts[:-1]])
    return np.concatenate(parts), offsets


def _first_cut(
    tc: IntArray,
    tot: FloatArray,
    var: FloatArray,
    flat: FloatArray,
    starts: IntArray,
    rows: int,
    cfg: Config,
) -> int | None:
    """Index (into ``tc``) of the first check at which River's cut search succeeds."""
    m = cfg.max_buckets
    hi = _his(tc, rows, m)
    lo = 2 * hi[:, 1:]
    count = hi[:, :-1] - lo
    slot = np.arange(m, dtype=np.int64)
    valid = slot < count[:, :, None]
    where = np.where(valid, lo[:, :, None] + slot + starts[None, :, None], 0)
    vals = np.where(valid, flat[where], 0.0)
    sizes = np.where(valid, (np.int64(1) << np.arange(rows, dtype=np.int64))[None, :, None], 0)
    # River scans rows from the largest buckets down, oldest bucket first within a row.
    c = tc.shape[0]
    vals = vals[:, ::-1, :].reshape(c, rows * m)
    valid = valid[:, ::-1, :].reshape(c, rows * m)
    n0 = np.cumsum(sizes[:, ::-1, :].reshape(c, rows * m), axis=1)
    n1 = tc[:, None] - n0
    # The newest bucket (last of row 0) ends the loop before it is tested.
    newest = count[:, 0] > 0
    valid[np.flatnonzero(newest), (rows - 1) * m + count[newest, 0] - 1] = False
    valid &= (n0 >= cfg.min_window_length) & (n1 >= cfg.min_window_length)
    u0 = np.cumsum(vals, axis=1)
    u1 = np.cumsum(np.concatenate((tot[:, None], -vals), axis=1), axis=1)[:, 1:]
    width = tc.astype(np.float64)
    dprime = np.array([delta_prime(w, cfg.delta) for w in width.tolist()])
    lmin = float(cfg.min_window_length)
    f0, f1 = n0.astype(np.float64), n1.astype(np.float64)
    with np.errstate(all="ignore"):
        dm = (u0 / f0) - (u1 / f1)
        mr = 1.0 / (f0 - lmin + 1.0) + 1.0 / (f1 - lmin + 1.0)
        eps = np.sqrt(2.0 * mr * (var / width)[:, None] * dprime[:, None])
        eps = eps + (2.0 / 3.0 * dprime)[:, None] * mr
        cut = valid & (np.abs(dm) > eps)
    hits = np.flatnonzero(cut.any(axis=1))
    return int(hits[0]) if hits.size else None


def run_block(win: Window, xs: FloatArray, cfg: Config) -> int | Window:
    """Insert ``xs``; return the offset of the first detection, or the window after ``xs``.

    Between two detections ADWIN never deletes a bucket (River rebuilds the whole window after
    a detection), so after ``t`` insertions row ``i`` holds the level-``i`` blocks
    ``[lo_i(t), hi_i(t))`` with ``hi_0 = t``, ``hi_{i+1} = max(0, (hi_i - M + 1) // 2)`` and
    ``lo_i = 2 hi_{i+1}`` (``M`` = ``max_buckets``): a row merges its two oldest buckets whenever
    it holds ``M + 1``, so a level-``i`` bucket total is the sum of two aligned level-``i-1``
    totals, the very addition River performs. The running total and Welford sum are sequential
    ``np.cumsum`` of River's per-insertion terms; each check then gathers its bucket totals and
    evaluates River's cut test for every boundary at once.
    """
    k = xs.shape[0]
    t = np.arange(win.n + 1, win.n + k + 1, dtype=np.int64)
    width = t.astype(np.float64)
    tot = np.cumsum(np.concatenate(([win.total], xs)))
    with np.errstate(all="ignore"):
        dv = xs - tot[:-1] / (width - 1.0)
        inc = np.where(width > 1.0, (width - 1.0) * dv * dv / width, 0.0)
    var = np.cumsum(np.concatenate(([win.variance], inc)))[1:]
    tot = tot[1:]
    rows = _n_rows(win.n + k, cfg.max_buckets)
    flat, offsets = _levels(win, xs, rows, cfg.max_buckets)
    base = _his(np.array([win.n], dtype=np.int64), rows, cfg.max_buckets)[0]
    starts = offsets - 2 * base[1:]  # flat index of global block g of level i: starts[i] + g
    checks = np.flatnonzero((t % cfg.clock == 0) & (t > cfg.grace_period))
    per_call = max(1, _CELLS // (rows * cfg.max_buckets))  # bounds the (checks x buckets) arrays
    for lo in range(0, checks.size, per_call):
        at = checks[lo : lo + per_call]
        hit = _first_cut(t[at], tot[at], var[at], flat, starts, rows, cfg)
        if hit is not None:
            return int(at[hit])
    end = _his(np.array([win.n + k], dtype=np.int64), rows, cfg.max_buckets)[0]
    new_rows = [flat[starts[i] + 2 * end[i + 1] : starts[i] + end[i]].tolist() for i in range(rows)]
    return Window(win.n + k, float(tot[-1]), float(var[-1]), new_rows)
