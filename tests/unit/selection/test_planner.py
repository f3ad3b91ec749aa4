"""Cadence periods in the subscriber's own time zone, across daylight-saving changes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from digest.selection.planner import Schedule, current_period


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "now", "key", "slot"),
    [
        # Berlin is UTC+1 in November: 07:00 local = 06:00 UTC.
        ("Europe/Berlin", utc(2026, 11, 27, 5, 59), "daily:2026-11-26", utc(2026, 11, 26, 6)),
        ("Europe/Berlin", utc(2026, 11, 27, 6, 0), "daily:2026-11-27", utc(2026, 11, 27, 6)),
        # New York, UTC-5 in winter: 07:00 local = 12:00 UTC.
        ("America/New_York", utc(2026, 11, 27, 12, 0), "daily:2026-11-27", utc(2026, 11, 27, 12)),
        # Auckland is UTC+13 in (southern) summer: 07:00 on the 28th local = 18:00 UTC on the 27th.
        ("Pacific/Auckland", utc(2026, 11, 27, 18, 0), "daily:2026-11-28", utc(2026, 11, 27, 18)),
    ],
)
def test_daily_period(tz: str, now: datetime, key: str, slot: datetime) -> None:
    period = current_period(Schedule("daily", tz, 7, 0), now)
    assert (period.key, period.slot) == (key, slot)


def test_slot_follows_daylight_saving_change() -> None:
    sched = Schedule("daily", "America/New_York", 7, 0)
    # 2026-03-08 is the US spring-forward day: 07:00 EST before, EDT after (UTC-4).
    assert current_period(sched, utc(2026, 3, 7, 12, 30)).slot == utc(2026, 3, 7, 12)
    assert current_period(sched, utc(2026, 3, 8, 11, 30)).slot == utc(2026, 3, 8, 11)
    berlin = Schedule("daily", "Europe/Berlin", 7, 0)
    # 2026-10-25: Berlin falls back from UTC+2 to UTC+1.
    assert current_period(berlin, utc(2026, 10, 24, 5, 30)).slot == utc(2026, 10, 24, 5)
    assert current_period(berlin, utc(2026, 10, 25, 6, 30)).slot == utc(2026, 10, 25, 6)


def test_hour_in_a_dst_gap_still_has_one_slot() -> None:
    # 02:00 does not exist in Berlin on 2026-03-29; the slot is the instant after the gap.
    sched = Schedule("daily", "Europe/Berlin", 2, 0)
    period = current_period(sched, utc(2026, 3, 29, 12))
    assert period.key == "daily:2026-03-29" and period.slot == utc(2026, 3, 29, 1)


def test_weekly_period_on_the_chosen_weekday() -> None:
    sched = Schedule("weekly", "Europe/Berlin", 7, 0)  # Mondays 07:00
    friday = utc(2026, 11, 27, 12)
    assert current_period(sched, friday).key == "weekly:2026-11-23"
    monday_early = utc(2026, 11, 30, 5, 0)  # 06:00 Berlin: before the slot
    assert current_period(sched, monday_early).key == "weekly:2026-11-23"
    assert current_period(sched, utc(2026, 11, 30, 6, 0)).key == "weekly:2026-11-30"
