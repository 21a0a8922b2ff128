"""Cron expressions: parsing, day matching, and next fire times across DST."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from retrigger.policies.cron import CronError, next_fire, parse_cron

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")


def _fires(expr: str, after: datetime, tz: ZoneInfo, count: int) -> list[str]:
    out: list[str] = []
    for _ in range(count):
        after = next_fire(expr, after, tz)
        out.append(after.isoformat())
    return out


class TestParseCron:
    def test_star_covers_the_field(self) -> None:
        assert parse_cron("* * * * *").minutes == frozenset(range(60))

    def test_lists_ranges_and_steps(self) -> None:
        expr = parse_cron("0,15,30-40/5 */6 1-10/3 * *")
        assert expr.minutes == {0, 15, 30, 35, 40}
        assert expr.hours == {0, 6, 12, 18}
        assert expr.days_of_month == {1, 4, 7, 10}

    def test_start_with_step_runs_to_the_end(self) -> None:
        assert parse_cron("50/5 * * * *").minutes == {50, 55}

    def test_month_and_weekday_names_are_case_insensitive(self) -> None:
        expr = parse_cron("0 0 * JAN-mar Mon-Fri")
        assert expr.months == {1, 2, 3}
        assert expr.days_of_week == {1, 2, 3, 4, 5}

    def test_seven_is_sunday(self) -> None:
        assert parse_cron("0 0 * * 5-7").days_of_week == {5, 6, 0}

    @pytest.mark.parametrize(
        ("macro", "fields"),
        [
            ("@hourly", "0 * * * *"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@weekly", "0 0 * * 0"),
            ("@monthly", "0 0 1 * *"),
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
        ],
    )
    def test_macros_expand(self, macro: str, fields: str) -> None:
        by_macro, by_fields = parse_cron(macro), parse_cron(fields)
        assert (by_macro.minutes, by_macro.hours, by_macro.days_of_month) == (
            by_fields.minutes,
            by_fields.hours,
            by_fields.days_of_month,
        )
        assert (by_macro.months, by_macro.days_of_week) == (
            by_fields.months,
            by_fields.days_of_week,
        )

    def test_normalises_whitespace_and_case(self) -> None:
        assert parse_cron("  0   3 * *  MON ").expression == "0 3 * * mon"

    @pytest.mark.parametrize(
        ("expr", "message"),
        [
            ("* * * *", "expected 5 fields"),
            ("* * * * * *", "expected 5 fields"),
            ("60 * * * *", "minute: 60 is out of range 0-59"),
            ("* 24 * * *", "hour: 24 is out of range"),
            ("* * 0 * *", "day-of-month: 0 is out of range"),
            ("* * * 13 *", "month: 13 is out of range"),
            ("* * * * 8", "day-of-week: 8 is out of range"),
            ("*/0 * * * *", "step '0' must be a positive number"),
            ("5-1 * * * *", "runs backwards"),
            ("1,,2 * * * *", "empty list element"),
            ("* * * foo *", "month: 'foo' is not a number"),
            ("@reboot", "unknown macro"),
            ("0 0 30 2 *", "never fires"),
            ("0 0 31 4,6,9,11 *", "never fires"),
        ],
    )
    def test_rejects_invalid_expressions_naming_the_field(self, expr: str, message: str) -> None:
        with pytest.raises(CronError, match=message):
            parse_cron(expr)


class TestMatchesDay:
    def test_both_day_fields_restricted_means_either(self) -> None:
        expr = parse_cron("0 0 13 * fri")
        assert expr.matches_day(date(2024, 9, 13))  # Friday the 13th
        assert expr.matches_day(date(2024, 9, 6))  # a Friday
        assert expr.matches_day(date(2024, 8, 13))  # a Tuesday, the 13th
        assert not expr.matches_day(date(2024, 9, 12))

    def test_one_day_field_star_means_both(self) -> None:
        expr = parse_cron("0 0 * * fri")
        assert expr.matches_day(date(2024, 9, 6))
        assert not expr.matches_day(date(2024, 9, 13 - 1))

    def test_starred_step_counts_as_unrestricted(self) -> None:
        expr = parse_cron("0 0 */2 * mon")  # Vixie cron: AND, since the field starts with '*'
        assert expr.matches_day(date(2024, 9, 9))  # Monday, odd day
        assert not expr.matches_day(date(2024, 9, 16))  # Monday, even day
        assert not expr.matches_day(date(2024, 9, 11))  # odd day, Wednesday


class TestNextFire:
    def test_is_strictly_after(self) -> None:
        after = datetime(2024, 1, 1, 3, 0, tzinfo=UTC)
        assert next_fire("0 3 * * *", after, "UTC") == datetime(2024, 1, 2, 3, 0, tzinfo=UTC)

    def test_returns_time_in_the_zone(self) -> None:
        fire = next_fire("@daily", datetime(2024, 1, 1, 12, tzinfo=UTC), "Europe/Berlin")
        assert fire.tzinfo == BERLIN
        assert fire.isoformat() == "2024-01-02T00:00:00+01:00"

    def test_leap_day(self) -> None:
        fire = next_fire("0 0 29 2 *", datetime(2025, 1, 1, tzinfo=UTC), "UTC")
        assert fire == datetime(2028, 2, 29, tzinfo=UTC)

    def test_day_or_weekday(self) -> None:
        fire = next_fire("0 9 1 * mon", datetime(2024, 1, 1, 10, tzinfo=UTC), "UTC")
        assert fire == datetime(2024, 1, 8, 9, tzinfo=UTC)

    def test_after_in_another_zone_is_compared_as_an_instant(self) -> None:
        after = datetime(2024, 6, 1, 23, 30, tzinfo=NEW_YORK)  # 05:30 on June 2 in Berlin
        assert next_fire("0 6 * * *", after, BERLIN).isoformat() == "2024-06-02T06:00:00+02:00"

    def test_naive_after_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            next_fire("@daily", datetime(2024, 1, 1), "UTC")

    def test_berlin_spring_gap_shifts_the_skipped_time(self) -> None:
        after = datetime(2024, 3, 30, 12, tzinfo=UTC)
        assert _fires("30 2 * * *", after, BERLIN, 2) == [
            "2024-03-31T03:30:00+02:00",  # 02:30 does not exist that night
            "2024-04-01T02:30:00+02:00",
        ]

    def test_berlin_spring_gap_hourly_does_not_double_fire(self) -> None:
        after = datetime(2024, 3, 30, 23, tzinfo=UTC)  # 00:00 CET
        assert _fires("0 * * * *", after, BERLIN, 3) == [
            "2024-03-31T01:00:00+01:00",
            "2024-03-31T03:00:00+02:00",
            "2024-03-31T04:00:00+02:00",
        ]

    def test_berlin_fall_back_fixed_time_fires_once(self) -> None:
        after = datetime(2024, 10, 26, 22, tzinfo=UTC)
        assert _fires("30 2 * * *", after, BERLIN, 2) == [
            "2024-10-27T02:30:00+02:00",
            "2024-10-28T02:30:00+01:00",
        ]

    def test_berlin_fall_back_hourly_fires_in_both_repeated_hours(self) -> None:
        after = datetime(2024, 10, 26, 23, 30, tzinfo=UTC)  # 01:30 CEST
        assert _fires("0 * * * *", after, BERLIN, 3) == [
            "2024-10-27T02:00:00+02:00",
            "2024-10-27T02:00:00+01:00",
            "2024-10-27T03:00:00+01:00",
        ]

    def test_new_york_spring_gap(self) -> None:
        after = datetime(2024, 3, 9, 12, tzinfo=UTC)
        assert _fires("30 2 * * *", after, NEW_YORK, 2) == [
            "2024-03-10T03:30:00-04:00",
            "2024-03-11T02:30:00-04:00",
        ]

    def test_new_york_fall_back_every_half_hour(self) -> None:
        after = datetime(2024, 11, 3, 5, 0, tzinfo=UTC)  # 01:00 EDT
        assert _fires("*/30 * * * *", after, NEW_YORK, 4) == [
            "2024-11-03T01:30:00-04:00",
            "2024-11-03T01:00:00-05:00",
            "2024-11-03T01:30:00-05:00",
            "2024-11-03T02:00:00-05:00",
        ]

    def test_new_york_fall_back_weekly_job_keeps_its_wall_clock(self) -> None:
        after = datetime(2024, 10, 28, tzinfo=UTC)
        assert _fires("0 9 * * mon", after, NEW_YORK, 2) == [
            "2024-10-28T09:00:00-04:00",
            "2024-11-04T09:00:00-05:00",
        ]

    @settings(max_examples=50, deadline=None)
    @given(
        expr=st.sampled_from(["*/7 * * * *", "0 */5 * * *", "15 3 * * mon-fri", "0 0 1,15 * *"]),
        offset=st.integers(min_value=0, max_value=3 * 365 * 24 * 60),
    )
    def test_matches_brute_force_in_utc(self, expr: str, offset: int) -> None:
        after = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(minutes=offset, seconds=17)
        parsed = parse_cron(expr)
        candidate = after.replace(second=0) + timedelta(minutes=1)
        while not (
            parsed.matches_day(candidate.date())
            and candidate.hour in parsed.hours
            and candidate.minute in parsed.minutes
        ):
            candidate += timedelta(minutes=1)
        assert next_fire(expr, after, "UTC") == candidate

    @settings(max_examples=50, deadline=None)
    @given(
        expr=st.sampled_from(["*/20 * * * *", "30 2 * * *", "0 1-3 * * *", "@weekly"]),
        offset=st.integers(min_value=0, max_value=2 * 365 * 24),
        zone=st.sampled_from([BERLIN, NEW_YORK]),
    )
    def test_successive_fires_increase_at_matching_minutes(
        self, expr: str, offset: int, zone: ZoneInfo
    ) -> None:
        after = datetime(2023, 1, 1, tzinfo=UTC) + timedelta(hours=offset)
        parsed = parse_cron(expr)
        first = next_fire(expr, after, zone)
        second = next_fire(expr, first, zone)
        assert after < first < second
        assert first.minute in parsed.minutes  # DST shifts are whole hours in these zones
