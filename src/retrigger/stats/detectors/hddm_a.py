"""HDDM_A, Hoeffding's-bound drift detection with moving averages (Frias-Blanco et al., 2015).

Equivalent to ``river.drift.binary.HDDMA`` (module ``hddm_a``; same defaults, same indices).
"""

from __future__ import annotations

import math
from typing import Self

import numpy as np
from numpy.typing import NDArray
from pydantic import Field, model_validator

from ._base import (
    DetectorParams,
    DetectorStats,
    DriftDetector,
    FloatArray,
    IntArray,
    invalid_state,
)
from ._kernels import latest_best, running_mean

__all__ = ["HDDM_A", "HDDMAParams"]

Bools = NDArray[np.bool_]


class HDDMAParams(DetectorParams):
    """Parameters of :class:`HDDM_A` (River's defaults)."""

    drift_confidence: float = Field(0.001, gt=0, lt=1, description="confidence of a drift")
    warning_confidence: float = Field(0.005, gt=0, lt=1, description="confidence of a warning")
    two_sided_test: bool = Field(False, description="also detect decreases of the mean")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.drift_confidence > self.warning_confidence:
            raise ValueError("drift_confidence must not exceed warning_confidence")
        return self


class HDDMAStats(DetectorStats):
    """JSON state of :class:`HDDM_A`: the running mean and its two cut-point snapshots."""

    n: int = Field(ge=0)
    mean: float
    low_n: int = Field(ge=0)
    low_mean: float
    high_n: int = Field(ge=0)
    high_mean: float


class HDDM_A(DriftDetector[HDDMAParams, HDDMAStats]):  # noqa: N801 - River's name
    r"""HDDM_A drift detector for a stream of prediction errors (A-test: moving averages).

    Let :math:`\bar z_n` be the mean of the ``n`` observations since the last reset and
    :math:`\epsilon(n) = \sqrt{\ln(1/\delta_d) / (2n)}` Hoeffding's bound. A cut point
    :math:`\bar x` (mean and count, snapshot of :math:`\bar z`) is moved to the present whenever
    :math:`\bar z_n + \epsilon(n) \le \bar x + \epsilon(n_x)`. A drift (confidence
    :math:`\delta_d`) or warning (:math:`\delta_w`) is flagged when
    :math:`\bar z_n - \bar x \ge \sqrt{m/2 \cdot \ln(2/\delta)}` with
    :math:`m = (n - n_x) / (n_x n)`. ``two_sided_test`` adds the mirror test for decreases.

    Input is binary: 1 (or ``True``) is an error, 0 (or ``False``) a correct prediction; any
    other value, NaN or infinity raises ``InvalidSample``.

    Parameters
    ----------
    drift_confidence : float, default 0.001
        Confidence level of the drift test, in (0, 1).
    warning_confidence : float, default 0.005
        Confidence level of the warning test, in (0, 1), at least ``drift_confidence``.
    two_sided_test : bool, default False
        Whether decreases of the error rate are detected too.

    References
    ----------
    .. [1] I. Frias-Blanco, J. del Campo-Avila, G. Ramos-Jimenez, R. Morales-Bueno,
       A. Ortiz-Diaz, Y. Caballero-Mota. "Online and non-parametric drift detection methods
       based on Hoeffding's bounds". IEEE TKDE 27(3), 2015, pp. 810-823.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(1000) < 0.2, rng.random(1000) < 0.5])
    >>> HDDM_A().update_many(errors).drifts
    [1051]
    """

    key = "hddm_a"
    params_model = HDDMAParams
    stats_model = HDDMAStats
    binary = True
    has_warnings = True

    def _reset_stats(self) -> None:
        self._ln_drift = math.log(1.0 / self.params.drift_confidence)
        self._n, self._mean = 0, 0.0
        self._lo_n, self._lo_mean = 0, 0.0
        self._hi_n, self._hi_mean = 0, 0.0

    def _bound(self, n: float) -> float:
        return math.sqrt(1.0 / (2 * n) * self._ln_drift)

    def _crossed(self, snap_n: int, snap_mean: float, up: bool) -> tuple[bool, bool]:
        """River's ``_mean_incr`` (``up``) or ``_mean_decr`` at the drift and warning levels."""
        n = float(self._n)
        if snap_n == self._n:
            return False, False
        m = (n - snap_n) / snap_n * (1.0 / n)
        gap = self._mean - snap_mean if up else snap_mean - self._mean
        prm = self.params
        return (
            gap >= math.sqrt(m / 2 * math.log(2.0 / prm.drift_confidence)),
            gap >= math.sqrt(m / 2 * math.log(2.0 / prm.warning_confidence)),
        )

    def _step(self, x: float) -> None:
        prm = self.params
        self._n += 1
        n = float(self._n)
        self._mean += (1.0 / n) * (x - self._mean)
        z = self._mean
        if self._lo_n == 0:
            self._lo_n, self._lo_mean = self._n, z
        if self._hi_n == 0:
            self._hi_n, self._hi_mean = self._n, z
        eps_z = self._bound(n)
        if self._lo_mean + self._bound(float(self._lo_n)) >= z + eps_z:
            self._lo_n, self._lo_mean = self._n, z
        if self._hi_mean - self._bound(float(self._hi_n)) <= z - eps_z:
            self._hi_n, self._hi_mean = self._n, z
        drift, warn = self._crossed(self._lo_n, self._lo_mean, up=True)
        warn = warn and not drift
        if prm.two_sided_test:
            drift_down, warn_down = self._crossed(self._hi_n, self._hi_mean, up=False)
            if drift_down:
                drift = True
            elif warn_down:
                warn = True
        self._drift, self._warning = drift, warn
        if drift:
            self._reset_stats()

    def _tests(
        self, n: FloatArray, z: FloatArray, snap_n: FloatArray, snap_mean: FloatArray, up: bool
    ) -> tuple[Bools, Bools]:
        """Vectorised ``_mean_incr``/``_mean_decr`` at the drift and warning confidences."""
        same = snap_n == n
        m = (n - snap_n) / snap_n * (1.0 / n)
        gap = z - snap_mean if up else snap_mean - z
        out = []
        for conf in (self.params.drift_confidence, self.params.warning_confidence):
            eps = np.sqrt(m / 2 * math.log(2.0 / conf))
            out.append(~same & (gap >= eps))
        return out[0], out[1]

    def _run_block(self, xs: FloatArray) -> tuple[int | None, IntArray]:
        k = xs.shape[0]
        n = np.arange(self._n + 1, self._n + k + 1, dtype=np.float64)
        z = running_mean(self._mean, self._n, xs)
        eps = np.sqrt(1.0 / (2 * n) * self._ln_drift)
        snaps = []
        for lower, snap_n, snap_mean in (
            (True, self._lo_n, self._lo_mean),
            (False, self._hi_n, self._hi_mean),
        ):
            sign = 1.0 if lower else -1.0
            best0 = snap_mean + sign * self._bound(float(snap_n)) if snap_n else sign * math.inf
            best = latest_best(z + sign * eps, best0, None, lower=lower)
            have = best >= 0
            at = np.where(have, best, 0)
            snaps.append((np.where(have, n[at], float(snap_n)), np.where(have, z[at], snap_mean)))
        drift, warn_up = self._tests(n, z, *snaps[0], up=True)
        warn = ~drift & warn_up
        if self.params.two_sided_test:
            drift_down, warn_down = self._tests(n, z, *snaps[1], up=False)
            warn = np.where(drift_down, warn, warn | warn_down)
            drift = drift | drift_down
        hits = np.flatnonzero(drift)
        stop = int(hits[0]) if hits.size else k - 1
        self._drift, self._warning = bool(drift[stop]), bool(warn[stop])
        warned = np.flatnonzero(warn[: stop + 1])
        if hits.size:
            self._reset_stats()
            return stop, warned
        self._n, self._mean = self._n + k, float(z[-1])
        self._lo_n, self._lo_mean = int(snaps[0][0][-1]), float(snaps[0][1][-1])
        self._hi_n, self._hi_mean = int(snaps[1][0][-1]), float(snaps[1][1][-1])
        return None, warned

    def _dump_stats(self) -> HDDMAStats:
        return HDDMAStats(
            n=self._n,
            mean=self._mean,
            low_n=self._lo_n,
            low_mean=self._lo_mean,
            high_n=self._hi_n,
            high_mean=self._hi_mean,
        )

    def _load_stats(self, stats: HDDMAStats) -> None:
        snaps_set = bool(stats.low_n) and bool(stats.high_n)
        if stats.low_n > stats.n or stats.high_n > stats.n or snaps_set != bool(stats.n):
            raise invalid_state("HDDM_A snapshot counts are inconsistent")
        self._n, self._mean = stats.n, stats.mean
        self._lo_n, self._lo_mean = stats.low_n, stats.low_mean
        self._hi_n, self._hi_mean = stats.high_n, stats.high_mean
