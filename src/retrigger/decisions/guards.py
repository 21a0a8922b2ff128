"""Guards: the ordered checks between "the policy fired" and "a retraining starts".

Each guard is a small class whose docstring names the failure it prevents. They are pure: the
caller hands them the policy's guard settings, the recent fire times and the new-data count, so
live evaluations and backtests share them. Every verdict is stored on the decision; the first
guard that blocks names the suppression.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, ClassVar

from retrigger.policies.durations import format_duration
from retrigger.policies.guards import Guards, Mode


@dataclass(frozen=True)
class GuardContext:
    """What guards look at: settings, time, previous fires, new labelled rows."""

    now: datetime
    settings: Guards
    fired_at: Sequence[datetime]
    new_labelled_samples: int | None
    active_run: str | None = None
    """The product's active run ("run 12 (running)"), if one exists."""


@dataclass(frozen=True)
class Verdict:
    guard: str
    allow: bool
    reason: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Guard(abc.ABC):
    key: ClassVar[str]

    @abc.abstractmethod
    def check(self, ctx: GuardContext) -> Verdict:
        """Allow or suppress, with the reason either way."""

    def _allow(self, reason: str) -> Verdict:
        return Verdict(self.key, True, reason)

    def _block(self, reason: str) -> Verdict:
        return Verdict(self.key, False, reason)


class SilenceGuard(Guard):
    """Prevents retraining during a maintenance window (a migration, a freeze), when new data is
    known to be unrepresentative or changes are forbidden."""

    key = "silence"

    def check(self, ctx: GuardContext) -> Verdict:
        for silence in ctx.settings.silences:
            if silence.covers(ctx.now):
                return self._block(f"silenced until {silence.end.isoformat()}: {silence.reason}")
        return self._allow("no silence covers now")


class ShadowModeGuard(Guard):
    """Prevents a policy on trial from launching anything: shadow mode records what it would do."""

    key = "shadow_mode"

    def check(self, ctx: GuardContext) -> Verdict:
        if ctx.settings.mode is Mode.SHADOW:
            return self._block("policy is in shadow mode: decision recorded, nothing launched")
        return self._allow("policy is active")


class CooldownGuard(Guard):
    """Prevents retraining storms: a flapping signal fires again right after a retrain."""

    key = "cooldown"

    def check(self, ctx: GuardContext) -> Verdict:
        cooldown = ctx.settings.cooldown
        if cooldown is None or not ctx.fired_at:
            return self._allow("no cooldown in force")
        last = max(ctx.fired_at)
        if ctx.now - last < cooldown:
            until = (last + cooldown).isoformat()
            return self._block(
                f"cooldown of {format_duration(cooldown)} after the retrain fired at "
                f"{last.isoformat()} (until {until})"
            )
        return self._allow(f"last fire {last.isoformat()} is outside the cooldown")


class BudgetGuard(Guard):
    """Prevents runaway cost: at most ``max_runs`` retrains per rolling ``period``."""

    key = "max_runs"

    def check(self, ctx: GuardContext) -> Verdict:
        limit = ctx.settings.max_runs
        if limit is None:
            return self._allow("no retraining budget set")
        since = ctx.now - ctx.settings.period
        used = sum(1 for t in ctx.fired_at if since < t <= ctx.now)
        period = format_duration(ctx.settings.period)
        if used >= limit:
            return self._block(f"budget spent: {used} of {limit} retrains in the last {period}")
        return self._allow(f"{used} of {limit} retrains used in the last {period}")


class MinNewSamplesGuard(Guard):
    """Prevents retraining on the same data: a retrain needs enough new labelled rows."""

    key = "min_new_samples"

    def check(self, ctx: GuardContext) -> Verdict:
        needed = ctx.settings.min_new_samples
        if needed <= 0:
            return self._allow("no minimum of new samples")
        have = ctx.new_labelled_samples or 0
        if have < needed:
            return self._block(
                f"only {have} new labelled rows since the last retrain, {needed} needed"
            )
        return self._allow(f"{have} new labelled rows since the last retrain (>= {needed})")


class ActiveRunGuard(Guard):
    """Prevents two retrainings of one product at once: they would race to replace the model.

    The database enforces it too (one active run per product); this guard records why.
    """

    key = "active_run"

    def check(self, ctx: GuardContext) -> Verdict:
        if ctx.active_run is not None:
            return self._block(f"{ctx.active_run} is still active")
        return self._allow("no active run")


DEFAULT_GUARDS: tuple[Guard, ...] = (
    SilenceGuard(),
    ShadowModeGuard(),
    ActiveRunGuard(),
    CooldownGuard(),
    BudgetGuard(),
    MinNewSamplesGuard(),
)


def apply_guards(
    ctx: GuardContext, guards: Sequence[Guard] = DEFAULT_GUARDS
) -> tuple[list[Verdict], Verdict | None]:
    """Every guard's verdict, and the first that blocks (None when all allow)."""
    verdicts = [guard.check(ctx) for guard in guards]
    return verdicts, next((v for v in verdicts if not v.allow), None)
