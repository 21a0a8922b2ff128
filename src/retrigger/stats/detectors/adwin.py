"""ADWIN, adaptive windowing (Bifet and Gavalda, 2007), for changes of a stream's mean.

Equivalent to ``river.drift.ADWIN`` (same defaults, same drift indices, bit-identical sums).
"""

from __future__ import annotations

import math

from pydantic import Field

from . import _adwin_batch as batch
from ._base import (
    DetectorParams,
    DetectorStats,
    DriftDetector,
    FloatArray,
    IntArray,
    invalid_state,
)

__all__ = ["ADWIN", "ADWINParams"]

_I32 = 2**31 - 1


class ADWINParams(DetectorParams):
    """Parameters of :class:`ADWIN` (River's defaults)."""

    delta: float = Field(0.002, gt=0, lt=1, description="significance of a cut")
    clock: int = Field(32, ge=1, le=_I32, description="check for a cut every `clock` updates")
    max_buckets: int = Field(5, ge=1, le=1000, description="buckets of each size before merging")
    min_window_length: int = Field(5, ge=1, le=_I32, description="minimum sub-window length")
    grace_period: int = Field(10, ge=0, le=_I32, description="updates before the first check")


class ADWINStats(DetectorStats):
    """JSON state of :class:`ADWIN`: counters, Welford sums and bucket totals per row."""

    n: int = Field(ge=0)
    total: float
    variance: float = Field(ge=0)
    rows: list[list[float]] = Field(min_length=1)


class ADWIN(DriftDetector[ADWINParams, ADWINStats]):
    r"""ADaptive WINdowing (ADWIN2) change detector on a real-valued stream (drifts only).

    ADWIN keeps the observations since the last detection in an exponential histogram: row
    ``i`` holds totals of buckets of :math:`2^i` observations; when a row holds
    ``max_buckets + 1`` buckets its two oldest merge into one bucket of the next row. Every
    ``clock`` updates (once more than ``grace_period`` observations were seen) each bucket
    boundary splits the window into an older part :math:`W_0` and a newer part :math:`W_1`
    (both at least ``min_window_length`` long, the newest bucket never alone in :math:`W_1`
    -- River's loop bound), and a drift is signalled if for some boundary

    .. math::
        |\hat\mu_{W_0} - \hat\mu_{W_1}| > \sqrt{2 m \sigma^2_W \delta'} + \tfrac{2}{3} \delta' m,
        \quad m = \frac{1}{n_0 - l + 1} + \frac{1}{n_1 - l + 1},
        \quad \delta' = \ln\frac{2 \ln |W|}{\delta},

    with :math:`l` = ``min_window_length`` and :math:`\sigma^2_W` the window variance. After a
    drift the window restarts empty (River rebuilds its helper at the next update).

    The batch path exploits that, between two detections, buckets are aligned blocks whose
    totals are pairwise sums: all checks of a block are evaluated at once with numpy while
    every float is formed by the same operations in the same order as River's Rust code.

    Parameters
    ----------
    delta : float, default 0.002
        Significance value, in (0, 1).
    clock : int, default 32
        How often (in updates) a cut is looked for.
    max_buckets : int, default 5
        Buckets of each size kept before two are merged.
    min_window_length : int, default 5
        Minimum length of each sub-window at a cut.
    grace_period : int, default 10
        No cut is looked for until more than this many observations were seen.

    References
    ----------
    .. [1] A. Bifet, R. Gavalda. "Learning from Time-Changing Data with Adaptive Windowing".
       Proceedings of the 2007 SIAM International Conference on Data Mining, pp. 443-448.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(12345)
    >>> stream = np.concatenate([rng.integers(0, 2, 1000), rng.integers(4, 8, 1000)])
    >>> adwin = ADWIN()
    >>> adwin.update_many(stream).drifts
    [1023]
    >>> adwin.width  # observations since the detection
    976
    """

    key = "adwin"
    params_model = ADWINParams
    stats_model = ADWINStats
    _first_block = 512

    def _reset_stats(self) -> None:
        self._n = 0
        self._total = 0.0
        self._variance = 0.0
        self._rows: list[list[float]] = [[]]

    @property
    def width(self) -> int:
        """Number of observations in the window (since the last detection)."""
        return self._n

    @property
    def estimation(self) -> float:
        """Mean of the window (0.0 when empty)."""
        return self._total / self._n if self._n else 0.0

    @property
    def variance(self) -> float:
        """Sample variance of the window (sum of squared deviations over the width)."""
        return self._variance / self._n if self._n else 0.0

    def _step(self, x: float) -> None:
        prm = self.params
        self._n += 1
        width = float(self._n)
        if width > 1.0:  # Welford update with River's operation order
            dv = x - self._total / (width - 1.0)
            self._variance += (width - 1.0) * dv * dv / width
        self._total += x
        rows = self._rows
        rows[0].append(x)
        i = 0
        while len(rows[i]) == prm.max_buckets + 1:
            merged = rows[i][0] + rows[i][1]
            del rows[i][:2]
            if i + 1 == len(rows):
                rows.append([])
            rows[i + 1].append(merged)
            i += 1
        if self._n % prm.clock == 0 and width > prm.grace_period and self._cut():
            self._drift = True
            self._reset_stats()

    def _cut(self) -> bool:
        """River's cut search over the current buckets (oldest first)."""
        prm = self.params
        width = float(self._n)
        lmin = float(prm.min_window_length)
        dprime = batch.delta_prime(width, prm.delta)
        var_w = self._variance / width
        n0, n1, u0, u1 = 0.0, width, 0.0, self._total
        for i in range(len(self._rows) - 1, -1, -1):
            size = float(1 << i)
            row = self._rows[i]
            last = len(row) - 1
            for j, t in enumerate(row):
                n0 += size
                n1 -= size
                u0 += t
                u1 -= t
                if i == 0 and j == last:
                    return False
                if n1 >= lmin and n0 >= lmin:
                    dm = (u0 / n0) - (u1 / n1)
                    m = 1.0 / (n0 - lmin + 1.0) + 1.0 / (n1 - lmin + 1.0)
                    eps = math.sqrt(2.0 * m * var_w * dprime) + 2.0 / 3.0 * dprime * m
                    if abs(dm) > eps:
                        return True
        return False

    def _run_block(self, xs: FloatArray) -> tuple[int | None, IntArray]:
        prm = self.params
        out = batch.run_block(
            batch.Window(self._n, self._total, self._variance, self._rows),
            xs,
            batch.Config(
                prm.delta, prm.clock, prm.max_buckets, prm.min_window_length, prm.grace_period
            ),
        )
        if isinstance(out, int):
            self._drift = True
            self._reset_stats()
            return out, self._no_warnings()
        self._n, self._total, self._variance, self._rows = out
        return None, self._no_warnings()

    def _dump_stats(self) -> ADWINStats:
        return ADWINStats(
            n=self._n,
            total=self._total,
            variance=self._variance,
            rows=[list(r) for r in self._rows],
        )

    def _load_stats(self, stats: ADWINStats) -> None:
        expected = batch.row_lengths(stats.n, self.params.max_buckets)
        if [len(r) for r in stats.rows] != expected:
            raise invalid_state(f"ADWIN rows must have lengths {expected} after {stats.n} updates")
        self._n, self._total, self._variance = stats.n, stats.total, stats.variance
        self._rows = [list(r) for r in stats.rows]
