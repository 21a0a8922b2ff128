"""The working copy of a product's evaluation state, shared by live evaluations and backtests.

Live evaluations load it from the locked ``product_states`` row and write it back; backtests start
from an empty one and keep it in memory while they replay history.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from retrigger.decisions.models import ProductState

# enough for any budget period and M-of-N window a policy can declare
MAX_FIRED_KEPT = 500
MAX_HISTORY_KEPT = 100


@dataclass
class StateView:
    detectors: dict[str, Any] = field(default_factory=dict)
    schedules: dict[str, str] = field(default_factory=dict)
    history: dict[str, list[bool | None]] = field(default_factory=dict)
    # rule id -> the data (see ``decisions.repeats.window_identity``) of the newest history entry
    history_windows: dict[str, str] = field(default_factory=dict)
    fired_at: list[datetime] = field(default_factory=list)
    last_evaluated_at: datetime | None = None
    model_trained_at: datetime | None = None
    last_retrain_at: datetime | None = None

    @classmethod
    def from_row(cls, row: ProductState | None) -> StateView:
        if row is None:
            return cls()
        return cls(
            detectors=dict(row.detectors),
            schedules=dict(row.schedules),
            history={k: list(v) for k, v in row.history.items()},
            history_windows=dict(row.history_windows or {}),
            fired_at=[datetime.fromisoformat(t) for t in row.fired_at],
            last_evaluated_at=row.last_evaluated_at,
            model_trained_at=row.model_trained_at,
            last_retrain_at=row.last_retrain_at,
        )

    def write_to(self, row: ProductState) -> None:
        row.detectors = dict(self.detectors)
        row.schedules = dict(self.schedules)
        row.history = {k: list(v) for k, v in self.history.items()}
        row.history_windows = dict(self.history_windows)
        row.fired_at = [t.isoformat() for t in self.fired_at]
        row.last_evaluated_at = self.last_evaluated_at
        row.model_trained_at = self.model_trained_at
        row.last_retrain_at = self.last_retrain_at

    def same_window(self, rule_id: str, identity: str | None) -> bool:
        """Whether the rule's newest history entry was decided on this very data."""
        return (
            identity is not None
            and self.history_windows.get(rule_id) == identity
            and bool(self.history.get(rule_id))
        )

    def history_before(self, rule_id: str, identity: str | None) -> list[bool | None]:
        """The M-of-N history this evaluation adds to: a window already decided replaces its
        own entry instead of counting twice."""
        past = list(self.history.get(rule_id, []))
        return past[:-1] if self.same_window(rule_id, identity) else past

    def schedule_mark(self, rule_id: str) -> datetime | None:
        mark = self.schedules.get(rule_id)
        return datetime.fromisoformat(mark) if mark else None

    def advance(
        self,
        findings: list[Any],
        *,
        fired: bool,
        now: datetime,
        detector_configs: dict[str, str],
        windows: Mapping[str, str] | None = None,
    ) -> None:
        """Carry what this evaluation learned into the next one.

        ``windows`` (rule id -> window identity) keys performance histories by their data: a
        window decided before replaces its entry. Without it (backtests) every evaluation
        appends one.
        """
        for finding in findings:
            if finding.new_state is not None:
                self.detectors[finding.rule_id] = {
                    "config": detector_configs.get(finding.rule_id),
                    "state": finding.new_state,
                }
            if finding.type == "performance":
                identity = (windows or {}).get(finding.rule_id)
                before = self.history_before(finding.rule_id, identity)
                self.history[finding.rule_id] = [*before, finding.breach][-MAX_HISTORY_KEPT:]
                if identity is not None:
                    self.history_windows[finding.rule_id] = identity
            if finding.type == "schedule":
                self.schedules[finding.rule_id] = now.isoformat()
        self.last_evaluated_at = now
        if fired:
            self.fired_at = [*self.fired_at, now][-MAX_FIRED_KEPT:]
            # until runs report back (the launching issue), a fired decision stands for the
            # retrain: cooldown, budget and "new samples since the last retrain" count from it
            self.last_retrain_at = now

    def repeat(self, findings: list[Any], *, now: datetime) -> None:
        """Carry a folded evaluation (one that learned nothing new) into the next one.

        Only time moves on: the evaluation time, and the marks of the schedule rules (the next
        evaluation looks for fire times after this one). M-of-N histories keep their entries, so
        "3 of the last 5 evaluations" counts evaluations that saw something new.
        """
        for finding in findings:
            if finding.type == "schedule":
                self.schedules[finding.rule_id] = now.isoformat()
        self.last_evaluated_at = now
