"""The first slot after a moment, and a time zone typed as a city (digest/selection/choices.py, planner.py)."""

from __future__ import annotations

from datetime import UTC, datetime

from digest.selection.choices import describe_choices, timezone_options
from digest.selection.planner import Schedule, next_slot
from digest.subscribers.schema import resolve_timezone


def test_the_next_daily_slot_keeps_local_time_across_a_clock_change() -> None:
    # Berlin leaves summer time on Sunday 25 Oct 2026: 07:00 local is 05:00 UTC before, 06:00 after.
    schedule = Schedule("daily", "Europe/Berlin", 7, 0)
    assert next_slot(schedule, datetime(2026, 10, 24, 6, 0, tzinfo=UTC)) == datetime(2026, 10, 25, 6, 0, tzinfo=UTC)
    assert next_slot(schedule, datetime(2026, 10, 24, 4, 0, tzinfo=UTC)) == datetime(2026, 10, 24, 5, 0, tzinfo=UTC)


def test_the_next_weekly_slot_is_on_the_chosen_day() -> None:
    schedule = Schedule("weekly", "America/New_York", 9, 2)  # Wednesdays, 09:00
    slot = next_slot(schedule, datetime(2026, 12, 5, 12, 0, tzinfo=UTC))  # a Saturday
    assert slot == datetime(2026, 12, 9, 14, 0, tzinfo=UTC)
    words = describe_choices(
        ["Cardiology"], "weekly", "America/New_York", "patient", 9, 2, datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
    )
    assert words.schedule == "Every Wednesday at 09:00"
    assert words.first_digest == "Wednesday 9 December at 09:00 (America/New_York time)"
    assert words.edition.startswith("For patients and carers")


def test_a_city_names_its_zone_only_when_one_zone_ends_with_it() -> None:
    assert resolve_timezone("berlin") == "Europe/Berlin"
    assert resolve_timezone("New York") == "America/New_York"
    assert resolve_timezone("europe/paris") == "Europe/Paris"
    assert resolve_timezone("Mars/Base") is None


def test_the_picker_offers_canonical_zones_with_their_offset_now() -> None:
    winter = dict(timezone_options(datetime(2026, 12, 5, 12, 0, tzinfo=UTC)))
    summer = dict(timezone_options(datetime(2026, 7, 5, 12, 0, tzinfo=UTC)))
    assert winter["Europe/Berlin"] == "UTC+01:00" and summer["Europe/Berlin"] == "UTC+02:00"
    assert winter["Asia/Kolkata"] == "UTC+05:30" and winter["America/New_York"] == "UTC\u221205:00"
    assert "US/Eastern" not in winter and "Etc/GMT+5" not in winter
