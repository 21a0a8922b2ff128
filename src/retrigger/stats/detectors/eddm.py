"""EDDM, the Early Drift Detection Method of Baena-Garcia et al. (2006), on binary errors.

Equivalent to ``river.drift.binary.EDDM`` (same defaults, same drift and warning indices).
"""

from __future__ import annotations

from typing import Self

import numpy as np
from pydantic import Field, model_validator

from ._base import (
    DetectorParams,
    DetectorStats,
    DriftDetector,
    FloatArray,
    IntArray,
    invalid_state,
)

__all__ = ["EDDM", "EDDMParams"]


class EDDMParams(DetectorParams):
    """Parameters of :class:`EDDM` (River's defaults)."""

    warm_start: int = Field(30, ge=0, description="observations and errors before detection")
    alpha: float = Field(0.95, gt=0, le=1, description="warning when the level drops below")
    beta: float = Field(0.9, gt=0, le=1, description="drift when the level drops below")

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.alpha < self.beta:
            raise ValueError("alpha must be greater than or equal to beta")
        return self


class EDDMStats(DetectorStats):
    """JSON state of :class:`EDDM` (counters and Welford moments of the error distances)."""

    n: int = Field(ge=0)
    n_errors: int = Field(ge=0)
    last_error: int = Field(ge=0)
    dist_mean: float
    dist_m2: float = Field(ge=0)
    p2s_max: float


class EDDM(DriftDetector[EDDMParams, EDDMStats]):
    r"""Early Drift Detection Method (EDDM) for a stream of prediction errors.

    EDDM watches the distance (in observations) between consecutive errors, which shrinks when
    a gradual drift raises the error rate. With :math:`p'_i` and :math:`s'_i` the running mean
    and standard deviation of these distances, it keeps the maximum of
    :math:`p'_i + 2 s'_i`. On each error, once more than ``warm_start`` observations *and*
    errors were seen, the level :math:`(p'_i + 2 s'_i) / \max(p' + 2 s')` gives

    * a drift when it is below ``beta``,
    * a warning when it is below ``alpha`` (cleared by an error whose level is at least
      ``alpha``; like River, a new maximum or a correct prediction leaves the flag as it is).

    Input is binary: 1 (or ``True``) is an error, 0 (or ``False``) a correct prediction; any
    other value, NaN or infinity raises ``InvalidSample``. Only errors cost work, so the batch
    path loops over error positions (exactly River's arithmetic) and fills warnings with numpy.

    Parameters
    ----------
    warm_start : int, default 30
        Observations and errors needed before a drift or warning can be flagged.
    alpha : float, default 0.95
        Warning threshold of the level, in (0, 1].
    beta : float, default 0.9
        Drift threshold of the level, in (0, 1] and at most ``alpha``.

    References
    ----------
    .. [1] M. Baena-Garcia, J. del Campo-Avila, R. Fidalgo, A. Bifet, R. Gavalda,
       R. Morales-Bueno. "Early Drift Detection Method". 4th International Workshop on Knowledge
       Discovery from Data Streams, 2006.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(42)
    >>> errors = np.concatenate([rng.random(2000) < 0.1, rng.random(2000) < 0.4])
    >>> EDDM(alpha=0.8, beta=0.75).update_many(errors).drifts
    [2383, 2972]
    """

    key = "eddm"
    params_model = EDDMParams
    stats_model = EDDMStats
    binary = True
    has_warnings = True

    def _reset_stats(self) -> None:
        self._n = 0
        self._n_errors = 0
        self._last_error = 0
        self._mean = 0.0
        self._m2 = 0.0
        self._p2s_max = -1.0

    def _step(self, x: float) -> None:
        self._n += 1
        if x == 1.0:
            self._on_error()

    def _on_error(self) -> None:
        """One error at observation ``self._n``; River's Var/Mean updates in River's order."""
        prm = self.params
        self._n_errors += 1
        dist = self._n - self._last_error
        old = self._mean
        count = float(self._n_errors)
        self._mean += (1.0 / count) * (dist - old)
        self._m2 += 1.0 * (dist - old) * (dist - self._mean)
        if self._n > prm.warm_start:
            var = self._m2 / (count - 1.0) if count > 1.0 else 0.0
            p2s = self._mean + 2 * var**0.5
            if p2s > self._p2s_max:
                self._p2s_max = p2s
            elif self._n_errors > prm.warm_start:
                level = p2s / self._p2s_max
                if level < prm.beta:
                    self._drift = True
                    self._reset_stats()
                    return
                self._warning = level < prm.alpha
        self._last_error = self._n

    def _run_block(self, xs: FloatArray) -> tuple[int | None, IntArray]:
        k = xs.shape[0]
        n0 = self._n
        flag_in = self._warning
        errors = np.flatnonzero(xs == 1.0)
        flags: list[bool] = []
        hit: int | None = None
        for e in errors.tolist():
            self._n = n0 + e + 1
            self._on_error()
            flags.append(self._warning)
            if self._drift:
                hit = e
                break
        stop = k if hit is None else hit + 1
        if hit is None:
            self._n = n0 + k
        starts = np.concatenate(([0], errors[: len(flags)]))
        ends = np.concatenate((errors[: len(flags)], [stop]))
        on = np.repeat(np.array([flag_in, *flags], dtype=bool), ends - starts)
        return hit, np.flatnonzero(on)

    def _dump_stats(self) -> EDDMStats:
        return EDDMStats(
            n=self._n,
            n_errors=self._n_errors,
            last_error=self._last_error,
            dist_mean=self._mean,
            dist_m2=self._m2,
            p2s_max=self._p2s_max,
        )

    def _load_stats(self, stats: EDDMStats) -> None:
        if stats.last_error > stats.n or stats.n_errors > stats.n:
            raise invalid_state("EDDM counters are inconsistent")
        self._n, self._n_errors, self._last_error = stats.n, stats.n_errors, stats.last_error
        self._mean, self._m2, self._p2s_max = stats.dist_mean, stats.dist_m2, stats.p2s_max
