"""The working copy of a product's evaluation state, shared by live evaluations and backtests.

Live evaluations load it from the locked ``product_states`` row and write it back; backtests start
from an empty one and keep it in memory while they replay history.
"""

from __future__ import annotations

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
            fired_at=[datetime.fromisoformat(t) for t in row.fired_at],
            last_evaluated_at=row.last_evaluated_at,
            model_trained_at=row.model_trained_at,
            last_retrain_at=row.last_retrain_at,
        )

    def write_to(self, row: ProductState) -> None:
        row.detectors = dict(self.detectors)
        row.schedules = dict(self.schedules)
        row.history = {k: list(v) for k, v in self.history.items()}
        row.fired_at = [t.isoformat() for t in self.fired_at]
        row.last_evaluated_at = self.last_evaluated_at
        row.model_trained_at = self.model_trained_at
        row.last_retrain_at = self.last_retrain_at

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
    ) -> None:
        """Carry what this evaluation learned into the next one."""
        for finding in findings:
            if finding.new_state is not None:
                self.detectors[finding.rule_id] = {
                    "config": detector_configs.get(finding.rule_id),
                    "state": finding.new_state,
                }
            if finding.type == "performance":
                past = [*self.history.get(finding.rule_id, []), finding.breach]
                self.history[finding.rule_id] = past[-MAX_HISTORY_KEPT:]
            if finding.type == "schedule":
                self.schedules[finding.rule_id] = now.isoformat()
        self.last_evaluated_at = now
        if fired:
            self.fired_at = [*self.fired_at, now][-MAX_FIRED_KEPT:]
            # until runs report back (the launching issue), a fired decision stands for the
            # retrain: cooldown, budget and "new samples since the last retrain" count from it
            self.last_retrain_at = now
