"""Who is due: cadence periods in each subscriber's own time zone.

A period starts at the subscriber's slot (their ``send_hour`` local time; weekly on ``send_weekday``)
and lasts until the next slot. A subscriber is due when the most recent slot has passed and that
period has not been served; the ledger's unique (subscriber, period_key) makes "never two in one
period" a database guarantee. Slots are computed per distinct schedule, not per subscriber, so the
cost does not grow with the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from digest.subscribers.models import Cadence


@dataclass(frozen=True)
class Schedule:
    cadence: str
    timezone: str
    send_hour: int
    send_weekday: int


@dataclass(frozen=True)
class Period:
    key: str  # "daily:2026-11-27" or "weekly:2026-11-23" (local date of the slot)
    slot: datetime  # the slot as an aware UTC datetime


def current_period(schedule: Schedule, now: datetime) -> Period:
    """The period that contains ``now``: the one whose slot is the most recent at or before ``now``."""
    tz = ZoneInfo(schedule.timezone)
    local_now = now.astimezone(tz)
    day = local_now.date()
    if schedule.cadence == Cadence.WEEKLY:
        day -= timedelta(days=(day.weekday() - schedule.send_weekday) % 7)
        step = timedelta(days=7)
    else:
        step = timedelta(days=1)
    slot = _local_slot(day, schedule.send_hour, tz)
    if slot > now:
        day -= step
        slot = _local_slot(day, schedule.send_hour, tz)
    return Period(key=f"{schedule.cadence}:{day.isoformat()}", slot=slot)


def next_slot(schedule: Schedule, now: datetime) -> datetime:
    """The first slot after ``now`` (UTC): the start of the period after the current one, counted in
    local days so that a daylight-saving change between them does not move it off the hour."""
    period = current_period(schedule, now)
    day = date.fromisoformat(period.key.split(":", 1)[1])
    return _local_slot(
        day + timedelta(days=7 if schedule.cadence == Cadence.WEEKLY else 1),
        schedule.send_hour,
        ZoneInfo(schedule.timezone),
    )


def _local_slot(day: date, hour: int, tz: ZoneInfo) -> datetime:
    """The instant of ``hour``:00 local time on ``day``.

    With fold=0 (PEP 495) a wall time in a spring-forward gap maps to the instant just after the gap,
    and an ambiguous fall-back time to its first occurrence: one slot per day either way.
    """
    return datetime.combine(day, time(hour), tzinfo=tz).astimezone(UTC)
