"""Build numeric profiles from raw values, client histograms or client quantiles.

The ``auto`` form: distinct values with counts when values repeat (at most half as many distinct
values as values, and at most ``max_distinct``): exact and smaller; otherwise every sorted value
up to ``max_values``; above that a quantile sketch of ``sketch_size`` knots (about 16 bytes each).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from retrigger.stats.errors import InvalidSample
from retrigger.stats.profiles.numeric import NumericForm, NumericProfile, quantile_bins
from retrigger.stats.profiles.sketch import lattice_step, sketch_knots
from retrigger.stats.samples import FloatArray, numeric_sample

_EMPTY = np.empty(0, dtype=np.float64)


class ProfileOptions(BaseModel):
    """How a numeric reference is stored; see the module docstring for the ``auto`` rule."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    form: Literal["auto", "sorted", "counts", "sketch"] = "auto"
    max_values: int = Field(1_000_000, ge=100)
    """Cap of the sorted form; beyond it, evenly spaced order statistics are kept (CDF error
    at most 1/max_values) when ``form="sorted"``, and ``auto`` switches to the sketch."""
    max_distinct: int = Field(65_536, ge=2)
    sketch_size: int = Field(1_900, ge=64, le=200_000)
    bins: int = Field(10, ge=2, le=1_000)
    """Quantile bins precomputed for PSI, Jensen-Shannon and Hellinger."""


def _finish(profile: NumericProfile, bins: int) -> NumericProfile:
    edges, mass = quantile_bins(profile, bins)
    return NumericProfile(
        form=profile.form,
        n=profile.n,
        values=profile.values,
        weights=profile.weights,
        mean=profile.mean,
        std=profile.std,
        bin_edges=edges,
        bin_mass=mass,
        atom_width=profile.atom_width,
        n_missing=profile.n_missing,
    )


def numeric_profile(values: Any, options: ProfileOptions | None = None) -> NumericProfile:
    """Profile raw reference values (NaN and infinities are counted and dropped)."""
    opts = options or ProfileOptions()
    sample = numeric_sample(values, what="reference")
    s = sample.sorted
    n = s.size
    starts = np.flatnonzero(np.concatenate(([True], s[1:] != s[:-1])))
    common = {"n": n, "mean": float(s.mean()), "std": float(s.std()), "n_missing": sample.n_missing}
    exact = NumericProfile(
        form=NumericForm.SORTED,
        values=s,
        weights=_EMPTY,
        bin_edges=_EMPTY,
        bin_mass=_EMPTY,
        **common,  # type: ignore[arg-type]
    )
    edges, mass = quantile_bins(exact, opts.bins)
    form = opts.form
    if form == "auto":
        repeats = starts.size <= min(opts.max_distinct, n // 2)
        form = "counts" if repeats else "sorted" if n <= opts.max_values else "sketch"
    if form == "counts":
        counts = np.diff(np.concatenate((starts, [n]))).astype(np.float64)
        stored, weights, step = s[starts], counts, 0.0
    elif form == "sketch":
        step = lattice_step(s[starts]) if starts.size <= n // 2 else 0.0
        stored, weights = sketch_knots(s, opts.sketch_size, step=step)
    else:
        stored, weights, step = s, _EMPTY, 0.0
        if n > opts.max_values:
            picks = ((np.arange(opts.max_values) + 0.5) * (n / opts.max_values)).astype(np.int64)
            stored = s[picks]
    return NumericProfile(
        form=NumericForm(form),
        values=np.array(stored, dtype=np.float64),
        weights=weights,
        bin_edges=edges,
        bin_mass=mass,
        atom_width=step,
        **common,  # type: ignore[arg-type]
    )


def _checked(name: str, values: Any) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1 or not np.isfinite(arr).all():
        raise InvalidSample(f"{name}: expected a one-dimensional list of finite numbers")
    return arr


def _sketch(
    z: FloatArray, g: FloatArray, n: int, bins: int, *, mean: float | None, std: float | None
) -> NumericProfile:
    mass = np.diff(g)
    total = float(g[-1])
    lo, hi = z[:-1], z[1:]
    with np.errstate(over="ignore", invalid="ignore"):  # huge spans: refused by the caller
        m1 = float((mass * (lo + hi) / 2).sum() / total)
        m2 = float((mass * (lo * lo + lo * hi + hi * hi) / 3).sum() / total)
    profile = NumericProfile(
        form=NumericForm.SKETCH,
        n=n,
        values=z,
        weights=g,
        mean=m1 if mean is None else mean,
        std=max(m2 - m1 * m1, 0.0) ** 0.5 if std is None else std,
        bin_edges=_EMPTY,
        bin_mass=_EMPTY,
    )
    return _finish(profile, bins)


def numeric_profile_from_histogram(edges: Any, counts: Any, *, bins: int = 10) -> NumericProfile:
    """Profile a client histogram (``len(edges) == len(counts) + 1``), uniform within each bin."""
    z, c = _checked("edges", edges), _checked("counts", counts)
    if z.size != c.size + 1 or c.size == 0:
        raise InvalidSample("histogram: need len(edges) == len(counts) + 1 >= 2")
    if (np.diff(z) <= 0).any() or (c < 0).any() or c.sum() <= 0:
        raise InvalidSample("histogram: edges must increase and counts be >= 0, not all zero")
    g = np.concatenate(([0.0], np.cumsum(c)))
    return _sketch(z, g, round(float(g[-1])), bins, mean=None, std=None)


def numeric_profile_from_quantiles(
    probabilities: Any,
    quantiles: Any,
    n: int,
    *,
    mean: float | None = None,
    std: float | None = None,
    bins: int = 10,
) -> NumericProfile:
    """Profile client quantiles: probabilities from 0 to 1 inclusive, quantiles non-decreasing."""
    p, q = _checked("probabilities", probabilities), _checked("quantiles", quantiles)
    if p.size != q.size or p.size < 2 or p[0] != 0.0 or p[-1] != 1.0:
        raise InvalidSample("quantiles: need matching lists whose probabilities run from 0 to 1")
    if (np.diff(p) <= 0).any() or (np.diff(q) < 0).any() or n < 1 or q[-1] <= q[0]:
        raise InvalidSample(
            "quantiles: probabilities must increase, quantiles not decrease, n >= 1"
        )
    return _sketch(q, p * n, int(n), bins, mean=mean, std=std)
