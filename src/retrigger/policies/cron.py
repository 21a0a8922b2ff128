"""Five-field cron expressions and their next fire time in an IANA time zone.

Syntax (Vixie cron): ``minute hour day-of-month month day-of-week``; each field is ``*``, a
value, a range ``a-b``, a step ``*/n``, ``a-b/n`` or ``a/n``, or a comma-separated list of these.
Months and weekdays take English names (``jan``, ``mon``); weekday 0 and 7 are Sunday. Macros:
``@yearly``, ``@annually``, ``@monthly``, ``@weekly``, ``@daily``, ``@midnight``, ``@hourly``.
When both day fields are restricted (neither starts with ``*``) a day matches if either does;
otherwise both must match.

Daylight saving time: a local time skipped by a spring-forward gap fires at the same wall
clock offset after the change (02:30 becomes 03:30), so a daily job never loses a day; a local
time repeated by a fall-back fires once, at its first occurrence, except for expressions that
fire every hour, which keep firing through the repeated hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["CronError", "CronExpression", "next_fire", "parse_cron"]

MACROS: Final = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MONTHS: Final = (
    "jan",
    "feb",
    "mar",
    "apr",
    "may",
    "jun",
    "jul",
    "aug",
    "sep",
    "oct",
    "nov",
    "dec",
)
_WEEKDAYS: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
# Offsets between a zone's local time and UTC change by at most a few hours at a transition;
# scanning this far around the target covers every candidate of both DST directions.
_SLACK: Final = timedelta(hours=3)
_SEARCH_YEARS: Final = 30


class CronError(ValueError):
    """A cron expression that cannot be parsed or never fires."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    name_offset: int = 0

    def value(self, token: str) -> int:
        lowered = token.lower()
        if lowered in self.names:
            return self.names.index(lowered) + self.name_offset
        if not token.isascii() or not token.isdigit():
            raise CronError(f"{self.name}: {token!r} is not a number or a known name")
        number = int(token)
        if not self.low <= number <= self.high:
            raise CronError(f"{self.name}: {number} is out of range {self.low}-{self.high}")
        return number

    def parse(self, text: str) -> frozenset[int]:
        values: set[int] = set()
        for item in text.split(","):
            values.update(self._item(item))
        return frozenset(values)

    def _item(self, item: str) -> range:
        if not item:
            raise CronError(f"{self.name}: empty list element")
        base, slash, step_text = item.partition("/")
        step = 1
        if slash:
            if not step_text.isascii() or not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"{self.name}: step {step_text!r} must be a positive number")
            step = int(step_text)
        if base == "*":
            return range(self.low, self.high + 1, step)
        start_text, dash, end_text = base.partition("-")
        start = self.value(start_text)
        if dash:
            end = self.value(end_text)
        else:
            end = self.high if slash else start
        if start > end:
            raise CronError(f"{self.name}: range {base!r} runs backwards")
        return range(start, end + 1, step)


_MINUTE = _Field("minute", 0, 59)
_HOUR = _Field("hour", 0, 23)
_DAY_OF_MONTH = _Field("day-of-month", 1, 31)
_MONTH = _Field("month", 1, 12, _MONTHS, 1)
_DAY_OF_WEEK = _Field("day-of-week", 0, 7, _WEEKDAYS, 0)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed expression; ``expression`` is its normalised text."""

    expression: str
    minutes: frozenset[int]
    hours: frozenset[int]
    days_of_month: frozenset[int]
    months: frozenset[int]
    days_of_week: frozenset[int]
    day_of_month_restricted: bool
    day_of_week_restricted: bool

    def __str__(self) -> str:
        return self.expression

    def matches_day(self, day: date) -> bool:
        """Whether ``day`` is a firing day (month and the day-of-month/day-of-week rule)."""
        if day.month not in self.months:
            return False
        in_month = day.day in self.days_of_month
        in_week = (day.weekday() + 1) % 7 in self.days_of_week
        if self.day_of_month_restricted and self.day_of_week_restricted:
            return in_month or in_week
        return in_month and in_week

    def next_fire(self, after: datetime, tz: str | tzinfo) -> datetime:
        """First fire time strictly after ``after`` (timezone-aware), expressed in ``tz``."""
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError("next_fire needs a timezone-aware 'after'")
        zone = ZoneInfo(tz) if isinstance(tz, str) else tz
        after_utc = after.astimezone(UTC)
        naive = after_utc.astimezone(zone).replace(tzinfo=None) - _SLACK
        best: datetime | None = None
        horizon: datetime | None = None
        while horizon is None or naive <= horizon:
            naive = self._next_local(naive)
            for instant in self._instants(naive, zone):
                if instant > after_utc and (best is None or instant < best):
                    best = instant
                    if horizon is None:
                        horizon = naive + _SLACK
        assert best is not None  # the loop only ends once a candidate was found
        return best.astimezone(zone)

    def _instants(self, local: datetime, zone: tzinfo) -> list[datetime]:
        """The UTC instants at which the wall-clock time ``local`` fires in ``zone``."""
        first = local.replace(tzinfo=zone, fold=0).astimezone(UTC)
        second = local.replace(tzinfo=zone, fold=1).astimezone(UTC)
        if first < second and len(self.hours) == 24:
            return [first, second]  # repeated hour, hourly expression: fire in both
        # Otherwise fold=0: the first occurrence of a repeated time, or the shifted time of a
        # skipped one (PEP 495 maps a gap time with fold=0 forward by the gap length).
        return [first]

    def _next_local(self, current: datetime) -> datetime:
        """First naive wall-clock minute strictly after ``current`` that matches."""
        moment = current.replace(second=0, microsecond=0) + timedelta(minutes=1)
        last_year = moment.year + _SEARCH_YEARS
        while moment.year <= last_year:
            if moment.month not in self.months:
                year, month = divmod(moment.year * 12 + moment.month, 12)
                moment = datetime(year, month + 1, 1)
                continue
            if not self.matches_day(moment.date()):
                moment = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time())
                continue
            hour = _first_at_least(self.hours, moment.hour)
            if hour is None:
                moment = datetime.combine(moment.date() + timedelta(days=1), datetime.min.time())
                continue
            if hour != moment.hour:
                moment = moment.replace(hour=hour, minute=0)
            minute = _first_at_least(self.minutes, moment.minute)
            if minute is None:
                moment = moment.replace(minute=0) + timedelta(hours=1)
                continue
            return moment.replace(minute=minute)
        raise CronError(f"{self.expression!r} never fires")


def _first_at_least(values: frozenset[int], floor: int) -> int | None:
    return min((v for v in values if v >= floor), default=None)


def parse_cron(text: str) -> CronExpression:
    """Parse a five-field expression or macro; raises :class:`CronError` naming the field."""
    if not isinstance(text, str):
        raise CronError("a cron expression must be a string")
    normalised = " ".join(text.lower().split())
    fields_text = MACROS.get(normalised, normalised)
    if fields_text.startswith("@"):
        raise CronError(f"unknown macro {text.strip()!r}; known: {', '.join(MACROS)}")
    parts = fields_text.split(" ")
    if len(parts) != 5:
        raise CronError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), got {len(parts)}"
        )
    minute, hour, dom, month, dow = parts
    expression = CronExpression(
        expression=normalised,
        minutes=_MINUTE.parse(minute),
        hours=_HOUR.parse(hour),
        days_of_month=_DAY_OF_MONTH.parse(dom),
        months=_MONTH.parse(month),
        days_of_week=frozenset(d % 7 for d in _DAY_OF_WEEK.parse(dow)),
        day_of_month_restricted=not dom.startswith("*"),
        day_of_week_restricted=not dow.startswith("*"),
    )
    expression._next_local(datetime(2000, 1, 1))  # rejects e.g. '0 0 30 2 *'
    return expression


def next_fire(expr: str | CronExpression, after: datetime, tz: str | tzinfo) -> datetime:
    """First time strictly after ``after`` at which ``expr`` fires in time zone ``tz``."""
    expression = parse_cron(expr) if isinstance(expr, str) else expr
    return expression.next_fire(after, tz)
