"""Structural diff of policy documents, and the path syntax shared with provenance.

Paths read like the document: ``guards.cooldown``, ``rules[staleness].max_age``,
``target.parameters.dataset``. Lists of objects with an ``id`` (rules) or a ``source``
(inhibitions) are matched by that key, so reordering them is no change; other lists are values.
Changes come in path order (keys sorted), so the same two documents always give the same list.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from enum import StrEnum
from typing import Any, Final

from pydantic import BaseModel, ConfigDict, JsonValue

__all__ = ["Change", "ChangeOp", "diff", "flatten", "join_path"]

_KEY_FIELDS: Final = ("id", "source")
_PLAIN_KEY: Final = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


class ChangeOp(StrEnum):
    """What happened at a path."""

    ADD = "add"
    REMOVE = "remove"
    CHANGE = "change"


class Change(BaseModel):
    """One difference; ``old`` is ``null`` for additions and ``new`` for removals."""

    model_config = ConfigDict(frozen=True)

    op: ChangeOp
    path: str
    old: JsonValue = None
    new: JsonValue = None


def join_path(prefix: str, key: str | int, *, keyed: bool = False) -> str:
    """Append a mapping key (``.key`` or ``["odd key"]``) or a list key (``[id]``)."""
    if keyed:
        return f"{prefix}[{key}]"
    if isinstance(key, str) and _PLAIN_KEY.match(key):
        return f"{prefix}.{key}" if prefix else key
    return f"{prefix}[{json.dumps(key)}]"


def _keyed(value: Any) -> tuple[str, dict[str, Mapping[str, Any]]] | None:
    """``(key field, items by key)`` if ``value`` is a non-empty list matched by key."""
    if not isinstance(value, Sequence) or isinstance(value, str) or not value:
        return None
    if not all(isinstance(item, Mapping) for item in value):
        return None
    for field in _KEY_FIELDS:
        keys = [item.get(field) for item in value]
        if all(isinstance(key, str) for key in keys) and len(set(keys)) == len(keys):
            return field, {str(item[field]): item for item in value}
    return None


def _without(item: Mapping[str, Any], field: str) -> dict[str, Any]:
    return {key: value for key, value in item.items() if key != field}


def flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf of a JSON document by path; lists that are not keyed are leaves."""
    if isinstance(value, Mapping) and value:
        out: dict[str, Any] = {}
        for key, item in value.items():
            out.update(flatten(item, join_path(prefix, key)))
        return out
    keyed = _keyed(value)
    if keyed is not None:
        field, items = keyed
        out = {}
        for key, item in items.items():
            out.update(flatten(_without(item, field), join_path(prefix, key, keyed=True)))
        return out
    return {prefix: value}


def _same(old: Any, new: Any) -> bool:
    return json.dumps(old, sort_keys=True) == json.dumps(new, sort_keys=True)


def _as_keyed(value: Any) -> tuple[str | None, dict[str, dict[str, Any]]] | None:
    """Keyed items; an empty list is keyed by anything."""
    if isinstance(value, list) and not value:
        return None, {}
    keyed = _keyed(value)
    if keyed is None:
        return None
    field, items = keyed
    return field, {key: dict(item) for key, item in items.items()}


def diff(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Changes turning JSON document ``old`` into ``new`` (compare canonical forms)."""
    changes: list[Change] = []
    _walk(old, new, "", changes)
    return changes


def _walk(old: Any, new: Any, path: str, out: list[Change]) -> None:
    if _same(old, new):
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        _walk_items(dict(old), dict(new), path, out)
        return
    before, after = _as_keyed(old), _as_keyed(new)
    if before is not None and after is not None:
        fields = {field for field in (before[0], after[0]) if field is not None}
        if len(fields) == 1:  # both keyed the same way, or one side empty
            _walk_items(before[1], after[1], path, out, key_field=fields.pop())
            return
    out.append(Change(op=ChangeOp.CHANGE, path=path, old=old, new=new))


def _walk_items(
    old: dict[Any, Any],
    new: dict[Any, Any],
    path: str,
    out: list[Change],
    *,
    key_field: str | None = None,
) -> None:
    for key in sorted(old.keys() | new.keys(), key=str):
        child = join_path(path, key, keyed=key_field is not None)
        if key not in new:
            out.append(Change(op=ChangeOp.REMOVE, path=child, old=old[key]))
        elif key not in old:
            out.append(Change(op=ChangeOp.ADD, path=child, new=new[key]))
        elif key_field is None:
            _walk(old[key], new[key], child, out)
        else:
            _walk(_without(old[key], key_field), _without(new[key], key_field), child, out)
