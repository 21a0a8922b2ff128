"""Page-Hinkley test (Page, 1954) with a fading factor, for shifts of a stream's mean.

Equivalent to ``river.drift.PageHinkley`` (same defaults, same drift indices).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from pydantic import Field
from scipy.signal import lfilter

from ._base import DetectorParams, DetectorStats, DriftDetector, FloatArray, IntArray
from ._kernels import fading_sums, running_mean

__all__ = ["PageHinkley", "PageHinkleyParams"]

_SLACK = 32


def _fade(u: FloatArray, alpha: float, start: float) -> FloatArray:
    """``s_t = alpha * s_{t-1} + u_t`` from ``s_0 = start`` (approximate: other rounding)."""
    out, _ = lfilter([1.0], [1.0, -alpha], u, zi=[alpha * start])
    return np.asarray(out, dtype=np.float64)


class PageHinkleyParams(DetectorParams):
    """Parameters of :class:`PageHinkley` (River's defaults)."""

    min_instances: int = Field(30, ge=0, description="observations before any detection")
    delta: float = Field(0.005, ge=0, description="tolerated change of the mean (magnitude)")
    threshold: float = Field(50.0, gt=0, description="detection threshold lambda")
    alpha: float = Field(1 - 0.0001, gt=0, le=1, description="fading factor of the sums")
    mode: Literal["up", "down", "both"] = Field("both", description="direction(s) monitored")


class PageHinkleyStats(DetectorStats):
    """JSON state of :class:`PageHinkley`; ``min_increase`` is ``None`` for +infinity."""

    n: int = Field(ge=0)
    mean: float
    sum_increase: float
    sum_decrease: float
    min_increase: float | None
    max_decrease: float


class PageHinkley(DriftDetector[PageHinkleyParams, PageHinkleyStats]):
    r"""Page-Hinkley change detector on a real-valued stream (drifts only, no warnings).

    With :math:`\bar x_t` the running mean and :math:`\alpha` the fading factor, two cumulative
    deviations are kept, :math:`U_t = \alpha U_{t-1} + (x_t - \bar x_t) - \delta` and
    :math:`L_t = \alpha L_{t-1} + (x_t - \bar x_t) + \delta`, with :math:`m_t = \min U` and
    :math:`M_t = \max L` (:math:`M_0 = -1` as in River). From ``min_instances`` observations on,
    a drift is signalled when :math:`U_t - m_t > \lambda` (``mode="up"``),
    :math:`M_t - L_t > \lambda` (``"down"``) or either (``"both"``); then everything restarts.

    NaN and infinities raise ``InvalidSample``. The batch path runs the two recurrences in
    River's exact operation order, so indices agree with River bit for bit.

    Parameters
    ----------
    min_instances : int, default 30
        Observations needed before a drift can be signalled.
    delta : float, default 0.005
        Magnitude of changes that are tolerated.
    threshold : float, default 50.0
        Detection threshold :math:`\lambda`.
    alpha : float, default 0.9999
        Forgetting factor applied to the cumulative sums.
    mode : {"up", "down", "both"}, default "both"
        Monitor increases, decreases, or both.

    References
    ----------
    .. [1] E. S. Page. "Continuous Inspection Schemes". Biometrika 41(1/2), 1954, pp. 100-115.
    .. [2] R. Sebastiao, J. M. Fernandes. "Supporting the Page-Hinkley test with empirical mode
       decomposition for change detection". ISMIS 2017, pp. 492-498.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> stream = np.concatenate([rng.normal(0.0, 1.0, 2000), rng.normal(3.0, 1.0, 2000)])
    >>> PageHinkley(threshold=100.0).update_many(stream).drifts
    [2027]
    """

    key = "page_hinkley"
    params_model = PageHinkleyParams
    stats_model = PageHinkleyStats
    _first_block = 4096  # ``_block_limit`` trims blocks to the likely detection

    def _reset_stats(self) -> None:
        self._n = 0
        self._mean = 0.0
        self._sum_inc = 0.0
        self._sum_dec = 0.0
        self._min_inc = math.inf
        self._max_dec = -1.0

    def _test(self, up: bool, down: bool) -> bool:
        mode = self.params.mode
        return up if mode == "up" else down if mode == "down" else up or down

    def _step(self, x: float) -> None:
        prm = self.params
        self._n += 1
        self._mean += (1.0 / float(self._n)) * (x - self._mean)
        dev = x - self._mean
        self._sum_inc = prm.alpha * self._sum_inc + dev - prm.delta
        self._sum_dec = prm.alpha * self._sum_dec + dev + prm.delta
        if self._sum_inc < self._min_inc:
            self._min_inc = self._sum_inc
        if self._sum_dec > self._max_dec:
            self._max_dec = self._sum_dec
        if self._n >= prm.min_instances:
            up = self._sum_inc - self._min_inc > prm.threshold
            down = self._max_dec - self._sum_dec > prm.threshold
            if self._test(up, down):
                self._drift = True
                self._reset_stats()

    def _block_limit(self, xs: FloatArray) -> int:
        """Stop shortly after the first detection of a fast float-approximate pass.

        The approximation (closed-form mean, ``lfilter`` sums, lowered threshold) only decides
        how far the exact pass runs; every detection is decided by the exact pass.
        """
        prm = self.params
        k = len(xs)
        if k <= 2 * _SLACK:
            return k
        n = np.arange(self._n + 1, self._n + k + 1, dtype=np.float64)
        with np.errstate(all="ignore"):
            dev = xs - (self._mean * self._n + np.cumsum(xs)) / n
            tol = 1e-6 * (prm.threshold + float(np.max(np.abs(dev))) / (1.0 - prm.alpha + 1e-9))
            fired = np.zeros(k, dtype=bool)
            if prm.mode != "down":
                inc = _fade(dev - prm.delta, prm.alpha, self._sum_inc)
                fired |= inc - np.fmin.accumulate(np.fmin(inc, self._min_inc)) > prm.threshold - tol
            if prm.mode != "up":
                dec = _fade(dev + prm.delta, prm.alpha, self._sum_dec)
                fired |= np.fmax.accumulate(np.fmax(dec, self._max_dec)) - dec > prm.threshold - tol
        fired &= n >= prm.min_instances
        hits = np.flatnonzero(fired)
        return min(k, int(hits[0]) + _SLACK) if hits.size else k

    def _run_block(self, xs: FloatArray) -> tuple[int | None, IntArray]:
        prm = self.params
        k = xs.shape[0]
        mean = running_mean(self._mean, self._n, xs)
        dev = xs - mean
        inc = fading_sums(self._sum_inc, dev, prm.alpha, prm.delta, minus=True)
        dec = fading_sums(self._sum_dec, dev, prm.alpha, prm.delta, minus=False)
        # fmin/fmax skip NaN like River's ``<``/``>`` comparisons do (reachable on overflow).
        min_inc = np.fmin.accumulate(np.concatenate(([self._min_inc], inc)))[1:]
        max_dec = np.fmax.accumulate(np.concatenate(([self._max_dec], dec)))[1:]
        n = np.arange(self._n + 1, self._n + k + 1, dtype=np.int64)
        active = n >= prm.min_instances
        with np.errstate(invalid="ignore"):
            up = inc - min_inc > prm.threshold
            down = max_dec - dec > prm.threshold
        fired = up if prm.mode == "up" else down if prm.mode == "down" else up | down
        hits = np.flatnonzero(active & fired)
        if hits.size:
            self._drift = True
            self._reset_stats()
            return int(hits[0]), self._no_warnings()
        self._n += k
        self._mean = float(mean[-1])
        self._sum_inc, self._sum_dec = float(inc[-1]), float(dec[-1])
        self._min_inc, self._max_dec = float(min_inc[-1]), float(max_dec[-1])
        return None, self._no_warnings()

    def _dump_stats(self) -> PageHinkleyStats:
        return PageHinkleyStats(
            n=self._n,
            mean=self._mean,
            sum_increase=self._sum_inc,
            sum_decrease=self._sum_dec,
            min_increase=None if math.isinf(self._min_inc) else self._min_inc,
            max_decrease=self._max_dec,
        )

    def _load_stats(self, stats: PageHinkleyStats) -> None:
        self._n = stats.n
        self._mean = stats.mean
        self._sum_inc, self._sum_dec = stats.sum_increase, stats.sum_decrease
        self._min_inc = math.inf if stats.min_increase is None else stats.min_increase
        self._max_dec = stats.max_decrease
