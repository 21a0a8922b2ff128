"""Compact, bit-exact bytes for profiles: a JSON header followed by raw little-endian arrays.

Layout: ``b"RTPF"``, a version byte, three zero bytes, the header length (uint32 LE), the UTF-8
JSON header padded with spaces to a multiple of 8, then each array's raw bytes in header order.
No pickle: loading never executes anything, and floats survive exactly (arrays are copied
bit for bit; header floats use Python's shortest round-trip repr).
"""

from __future__ import annotations

import json
import struct
from typing import Any

import numpy as np

from retrigger.stats.errors import InvalidSample
from retrigger.stats.profiles.categorical import CategoricalProfile
from retrigger.stats.profiles.numeric import NumericForm, NumericProfile
from retrigger.stats.samples import FeatureKind

Profile = NumericProfile | CategoricalProfile

MAGIC = b"RTPF"
VERSION = 1
_DTYPES = {"f8": np.dtype("<f8"), "i8": np.dtype("<i8")}
_NUMERIC_ARRAYS = ("values", "weights", "bin_edges", "bin_mass")


def profile_to_bytes(profile: Profile) -> bytes:
    """Serialise a profile (see the module docstring for the layout)."""
    arrays: list[tuple[str, np.ndarray[Any, Any]]]
    if isinstance(profile, NumericProfile):
        header: dict[str, Any] = {
            "type": "numeric",
            "form": profile.form.value,
            "n": profile.n,
            "mean": profile.mean,
            "std": profile.std,
            "atom_width": profile.atom_width,
            "n_missing": profile.n_missing,
        }
        arrays = [(name, getattr(profile, name)) for name in _NUMERIC_ARRAYS]
    else:
        header = {
            "type": "categorical",
            "kind": profile.kind.value,
            "categories": list(profile.categories),
            "n_missing": profile.n_missing,
        }
        arrays = [("counts", profile.counts)]
    header["arrays"] = [
        [name, "f8" if a.dtype.kind == "f" else "i8", int(a.size)] for name, a in arrays
    ]
    text = json.dumps(header, separators=(",", ":"), allow_nan=False).encode()
    text += b" " * (-len(text) % 8)
    body = b"".join(
        a.astype(_DTYPES[spec[1]], copy=False).tobytes()
        for (_, a), spec in zip(arrays, header["arrays"], strict=True)
    )
    return MAGIC + struct.pack("<B3xI", VERSION, len(text)) + text + body


def profile_from_bytes(data: bytes) -> Profile:
    """Load a profile written by ``profile_to_bytes``; malformed input raises ``InvalidSample``."""
    try:
        return _load(memoryview(data))
    except (KeyError, ValueError, TypeError, struct.error, UnicodeDecodeError) as exc:
        raise InvalidSample(f"profile bytes: malformed ({exc})") from exc


def _load(view: memoryview) -> Profile:
    if bytes(view[:4]) != MAGIC:
        raise ValueError("not a retrigger profile")
    version, size = struct.unpack_from("<B3xI", view, 4)
    if version != VERSION:
        raise ValueError(f"unsupported version {version}")
    header = json.loads(bytes(view[12 : 12 + size]))
    offset = 12 + size
    arrays: dict[str, np.ndarray[Any, Any]] = {}
    for name, code, count in header["arrays"]:
        dtype = _DTYPES[code]
        end = offset + dtype.itemsize * int(count)
        if end > len(view):
            raise ValueError("truncated")
        arrays[name] = np.frombuffer(view[offset:end], dtype=dtype).astype(dtype.newbyteorder("="))
        offset = end
    if offset != len(view):
        raise ValueError("trailing bytes")
    if header["type"] == "categorical":
        categories = tuple(str(c) for c in header["categories"])
        if len(categories) != arrays["counts"].size:
            raise ValueError("categories and counts differ in length")
        return CategoricalProfile(
            kind=FeatureKind(header["kind"]),
            categories=categories,
            counts=arrays["counts"],
            n_missing=int(header["n_missing"]),
        )
    values = arrays["values"]
    if values.size == 0 or (np.diff(values) < 0).any() or not np.isfinite(values).all():
        raise ValueError("values must be finite and sorted")
    return NumericProfile(
        form=NumericForm(header["form"]),
        n=int(header["n"]),
        mean=float(header["mean"]),
        std=float(header["std"]),
        atom_width=float(header["atom_width"]),
        n_missing=int(header["n_missing"]),
        **{name: arrays[name] for name in _NUMERIC_ARRAYS},
    )
