"""Joining predictions with labels that arrive later, and the error of a joined pair. Pure.

Classification errors are 0/1 mismatches; regression errors are absolute differences. Classes
compare by their label form, so ``1``, ``1.0`` and ``"1"`` are the same class and ``true`` is
``"true"``, as in the drift statistics.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from retrigger.signals.schemas import OutcomeIn, Task

OUTCOME_FIELDS = ("prediction", "label", "score", "predicted_at", "labelled_at", "model_version")


def is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def class_key(value: Any) -> str:
    """The label form of a class value: ``True`` -> ``"true"``, ``1.0`` -> ``"1"``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def infer_task(prediction: Any, label: Any) -> Task:
    """Numbers on both sides are a regression; anything else is a classification."""
    if is_number(prediction) and is_number(label):
        return Task.regression
    return Task.classification


def outcome_error(prediction: Any, label: Any, task: Task | None) -> float | None:
    """0/1 mismatch (classification) or absolute error (regression); None if not joined."""
    if prediction is None or label is None:
        return None
    task = task or infer_task(prediction, label)
    if task is Task.regression:
        if not (is_number(prediction) and is_number(label)):
            return None  # refused earlier by check_task; kept total for safety
        err = abs(float(prediction) - float(label))
        return err if math.isfinite(err) else None
    return 0.0 if class_key(prediction) == class_key(label) else 1.0


def task_problems(entry: OutcomeIn, task: Task | None) -> list[tuple[str, str]]:
    """Fields that cannot serve the declared task: (field, message) pairs."""
    if task is not Task.regression:
        return []
    return [
        (name, "regression outcomes need numbers")
        for name in ("prediction", "label")
        if getattr(entry, name) is not None and not is_number(getattr(entry, name))
    ]


def merge_entries(entries: list[OutcomeIn]) -> dict[str, dict[str, Any]]:
    """Entries of one batch by prediction id; for a repeated id, later non-null fields win."""
    merged: dict[str, dict[str, Any]] = {}
    for entry in entries:
        fields = {name: getattr(entry, name) for name in OUTCOME_FIELDS}
        current = merged.get(entry.prediction_id)
        if current is None:
            merged[entry.prediction_id] = fields
        else:
            current.update({k: v for k, v in fields.items() if v is not None})
    return merged


def apply(
    current: Mapping[str, Any] | None,
    incoming: Mapping[str, Any],
    *,
    task: Task | None,
    now: datetime,
) -> dict[str, Any]:
    """The outcome row after ``incoming`` fields (non-null ones) land on ``current``.

    The error is recomputed whenever both sides are known (a corrected label corrects it);
    ``joined_at`` is set once. ``detector_processed`` is left as it is: a detector never sees
    the same outcome twice, even when a label is corrected after it was consumed.
    """
    row: dict[str, Any] = dict(current) if current is not None else {}
    for name, value in incoming.items():
        if value is not None:
            row[name] = value
    for name in OUTCOME_FIELDS:
        row.setdefault(name, None)
    if current is None:
        row["received_at"] = now
        row["event_time"] = row["predicted_at"] or now
    elif incoming.get("predicted_at") is not None:
        row["event_time"] = incoming["predicted_at"]
    row["updated_at"] = now
    row["error"] = outcome_error(row["prediction"], row["label"], task)
    if row["prediction"] is not None and row["label"] is not None:
        row["joined_at"] = row.get("joined_at") or now
    else:
        row.setdefault("joined_at", None)
    return row
