"""DDM, the Drift Detection Method of Gama et al. (2004), on a binary error stream.

Equivalent to ``river.drift.binary.DDM`` (same defaults, same drift and warning indices).
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
from pydantic import Field, model_validator

from ._base import DetectorParams, DetectorStats, DriftDetector, FloatArray, IntArray
from ._kernels import latest_best, running_mean

__all__ = ["DDM", "DDMParams"]


class DDMParams(DetectorParams):
    """Parameters of :class:`DDM` (River's defaults)."""

    warm_start: int = Field(30, ge=0, description="observations before any detection")
    warning_threshold: float = Field(2.0, gt=0, description="warning at p_min + w * s_min")
    drift_threshold: float = Field(3.0, gt=0, description="drift at p_min + d * s_min")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.warning_threshold > self.drift_threshold:
            raise ValueError("warning_threshold must not exceed drift_threshold")
        return self


class DDMStats(DetectorStats):
    """JSON state of :class:`DDM`; the minimum is ``None`` until the warm start is over."""

    n: int = Field(ge=0)
    p: float = Field(ge=0, le=1)
    p_min: float | None = None
    s_min: float | None = None
    ps_min: float | None = None


class DDM(DriftDetector[DDMParams, DDMStats]):
    r"""Drift Detection Method (DDM) for a stream of prediction errors.

    The error rate :math:`p_i` of a stable learner should not increase. DDM keeps the running
    error rate and its binomial standard deviation :math:`s_i = \sqrt{p_i (1 - p_i) / i}`, and
    remembers :math:`p_{min}, s_{min}` where :math:`p_i + s_i` was smallest (ties replace).
    After ``warm_start`` observations it flags

    * a warning when :math:`p_i + s_i > p_{min} + w \cdot s_{min}` (``warning_threshold``),
    * a drift when :math:`p_i + s_i > p_{min} + d \cdot s_{min}` (``drift_threshold``);

    after a drift every statistic restarts.

    Input is binary: 1 (or ``True``) is an error, 0 (or ``False``) a correct prediction; any
    other value, NaN or infinity raises ``InvalidSample``. ``update_many`` returns the indices
    where ``drift_detected`` and ``warning_detected`` would be set after each ``update``.

    Parameters
    ----------
    warm_start : int, default 30
        Observations needed before a warning or drift can be flagged.
    warning_threshold : float, default 2.0
        Multiplier of :math:`s_{min}` for the warning zone.
    drift_threshold : float, default 3.0
        Multiplier of :math:`s_{min}` for a drift.

    References
    ----------
    .. [1] J. Gama, P. Medas, G. Castillo, P. Rodrigues. "Learning with Drift Detection".
       SBIA 2004, LNCS 3171, pp. 286-295.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.2, rng.random(1000) < 0.5])
    >>> ddm = DDM()
    >>> ddm.update_many(errors).drifts
    [1457]
    >>> ddm.update(1), ddm.drift_detected
    (False, False)
    """

    key = "ddm"
    params_model = DDMParams
    stats_model = DDMStats
    binary = True
    has_warnings = True

    def _reset_stats(self) -> None:
        self._n = 0
        self._p = 0.0
        self._p_min = 0.0
        self._s_min = 0.0
        self._ps_min = math.inf

    def _step(self, x: float) -> None:
        prm = self.params
        self._n += 1
        n = float(self._n)
        self._p += (1.0 / n) * (x - self._p)
        p = self._p
        s = math.sqrt(p * (1.0 - p) / n)
        if self._n > prm.warm_start:
            if p + s <= self._ps_min:
                self._p_min, self._s_min, self._ps_min = p, s, p + s
            self._warning = p + s > self._p_min + prm.warning_threshold * self._s_min
            if p + s > self._p_min + prm.drift_threshold * self._s_min:
                self._drift = True
                self._warning = False
                self._reset_stats()

    def _run_block(self, xs: FloatArray) -> tuple[int | None, IntArray]:
        prm = self.params
        k = xs.shape[0]
        n = np.arange(self._n + 1, self._n + k + 1, dtype=np.float64)
        p = running_mean(self._p, self._n, xs)
        s = np.sqrt(p * (1.0 - p) / n)
        ps = p + s
        active = n > prm.warm_start
        best = latest_best(ps, self._ps_min, active, lower=True)
        have = best >= 0
        at = np.where(have, best, 0)
        p_min = np.where(have, p[at], self._p_min)
        s_min = np.where(have, s[at], self._s_min)
        warn = active & (ps > p_min + prm.warning_threshold * s_min)
        drift = active & (ps > p_min + prm.drift_threshold * s_min)
        hits = np.flatnonzero(drift)
        if hits.size:
            d = int(hits[0])
            self._drift = True
            self._warning = False
            self._reset_stats()
            return d, np.flatnonzero(warn[:d])
        self._n += k
        self._p = float(p[-1])
        if have[-1]:
            j = int(best[-1])
            self._p_min, self._s_min, self._ps_min = float(p[j]), float(s[j]), float(ps[j])
        if active[-1]:
            self._warning = bool(warn[-1])
        return None, np.flatnonzero(warn)

    def _dump_stats(self) -> DDMStats:
        if math.isinf(self._ps_min):
            return DDMStats(n=self._n, p=self._p)
        return DDMStats(
            n=self._n, p=self._p, p_min=self._p_min, s_min=self._s_min, ps_min=self._ps_min
        )

    def _load_stats(self, stats: DDMStats) -> None:
        self._n = stats.n
        self._p = stats.p
        if stats.p_min is None or stats.s_min is None or stats.ps_min is None:
            self._p_min, self._s_min, self._ps_min = 0.0, 0.0, math.inf
        else:
            self._p_min, self._s_min, self._ps_min = stats.p_min, stats.s_min, stats.ps_min
