"""Profile bytes: bit-exact round trips for every form, no pickle, clear errors on bad input."""

from __future__ import annotations

import numpy as np
import pytest

from retrigger.stats.errors import InvalidSample
from retrigger.stats.profiles import (
    CategoricalProfile,
    FeatureKind,
    NumericProfile,
    Profile,
    ProfileOptions,
    categorical_profile,
    numeric_profile,
    numeric_profile_from_histogram,
    profile_from_bytes,
    profile_to_bytes,
)
from retrigger.stats.profiles.codec import MAGIC


def _profiles(rng: np.random.Generator) -> list[Profile]:
    data = rng.lognormal(size=20_000)
    return [
        numeric_profile(data),
        numeric_profile(np.round(data, 1)),
        numeric_profile(data, ProfileOptions(form="sketch")),
        numeric_profile(np.round(data, 2), ProfileOptions(form="sketch")),
        numeric_profile(data, ProfileOptions(form="sorted", max_values=500)),
        numeric_profile_from_histogram([0.0, 1.0, 2.5], [3, 4]),
        categorical_profile(["b", "a", "é", None, "b"]),
        categorical_profile([True, False, True], kind=FeatureKind.BOOLEAN),
    ]


def _bitwise_equal(a: Profile, b: Profile) -> bool:
    if isinstance(a, CategoricalProfile) and isinstance(b, CategoricalProfile):
        return (
            a.kind == b.kind
            and a.categories == b.categories
            and a.counts.tobytes() == b.counts.tobytes()
            and a.n_missing == b.n_missing
        )
    assert isinstance(a, NumericProfile)
    assert isinstance(b, NumericProfile)
    arrays = ("values", "weights", "bin_edges", "bin_mass")
    scalars = ("form", "n", "mean", "std", "atom_width", "n_missing")
    return all(getattr(a, k).tobytes() == getattr(b, k).tobytes() for k in arrays) and all(
        getattr(a, k) == getattr(b, k) for k in scalars
    )


def test_round_trip_is_bit_exact(rng: np.random.Generator) -> None:
    for profile in _profiles(rng):
        data = profile_to_bytes(profile)
        loaded = profile_from_bytes(data)
        assert _bitwise_equal(profile, loaded)
        assert profile_to_bytes(loaded) == data


def test_format_is_not_pickle(rng: np.random.Generator) -> None:
    data = profile_to_bytes(_profiles(rng)[0])
    assert data.startswith(MAGIC)
    assert b"\x80\x04" not in data[:2]


def test_sketch_of_a_million_values_fits_in_32_kib(rng: np.random.Generator) -> None:
    profile = numeric_profile(rng.normal(size=1_000_000), ProfileOptions(form="sketch"))
    assert len(profile_to_bytes(profile)) <= 32 * 1024


@pytest.mark.parametrize(
    "data",
    [b"", b"nope", MAGIC + b"\x02\x00\x00\x00\x00\x00\x00\x00", MAGIC + b"\x01\x00\x00\x00\xff"],
)
def test_garbage_raises_invalid_sample(data: bytes) -> None:
    with pytest.raises(InvalidSample):
        profile_from_bytes(data)


def test_truncated_and_trailing_bytes_raise(rng: np.random.Generator) -> None:
    data = profile_to_bytes(numeric_profile(rng.normal(size=50)))
    with pytest.raises(InvalidSample):
        profile_from_bytes(data[:-8])
    with pytest.raises(InvalidSample):
        profile_from_bytes(data + b"\x00" * 8)
