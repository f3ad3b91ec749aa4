"""A subscriber's choices in words, and when their first digest comes: what the "you are subscribed"
page and the confirmation email repeat back, so a reader can see at once what they signed up for."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from digest.selection.planner import Schedule, next_slot
from digest.subscribers.models import Cadence, Edition
from digest.subscribers.schema import iana_timezones

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
EDITIONS = {
    Edition.CLINICIAN.value: "For clinicians: key takeaway, outcomes and study details first",
    Edition.PATIENT.value: "For patients and carers: what each study means, in plain language",
}


@dataclass(frozen=True)
class Choices:
    specialties: tuple[str, ...]  # display names
    schedule: str  # "Every day at 07:00" / "Every Monday at 07:00"
    timezone: str
    edition: str
    first_digest: str  # "Sunday 6 December at 07:00 (Europe/Berlin)"

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) rows, in the order the forms ask for them."""
        return [
            ("Specialties", ", ".join(self.specialties) or "none"),
            ("How often", f"{self.schedule}, {self.timezone} time"),
            ("Edition", self.edition),
        ]


def describe_choices(
    specialties: Sequence[str],
    cadence: str,
    timezone: str,
    edition: str,
    send_hour: int,
    send_weekday: int,
    now: datetime,
) -> Choices:
    """The choices in words; ``first_digest`` is the first slot after ``now`` (a subscriber confirmed
    after a slot is first served at the next one: see ``digest.selection.service``)."""
    hour = f"{send_hour:02d}:00"
    weekly = cadence == Cadence.WEEKLY
    schedule = f"Every {WEEKDAYS[send_weekday]} at {hour}" if weekly else f"Every day at {hour}"
    slot = next_slot(Schedule(cadence, timezone, send_hour, send_weekday), now).astimezone(ZoneInfo(timezone))
    first = f"{WEEKDAYS[slot.weekday()]} {slot.day} {slot:%B} at {slot:%H:%M} ({timezone} time)"
    return Choices(
        specialties=tuple(specialties),
        schedule=schedule,
        timezone=timezone,
        edition=EDITIONS.get(edition, edition),
        first_digest=first,
    )


def timezone_options(now: datetime) -> list[tuple[str, str]]:
    """(IANA name, its UTC offset now) for the time-zone picker, sorted by name: the offsets as of
    the current hour (they change with daylight saving)."""
    return list(_timezone_options(now.replace(minute=0, second=0, microsecond=0)))


@functools.lru_cache(maxsize=2)
def _timezone_options(hour: datetime) -> tuple[tuple[str, str], ...]:
    out = []
    for zone in sorted(iana_timezones()):
        if ("/" not in zone and zone != "UTC") or zone.startswith(("Etc/", "SystemV/", "US/", "posix", "right")):
            continue  # legacy aliases (EST, Etc/GMT+5, US/Eastern): valid when typed, not offered
        offset = hour.astimezone(ZoneInfo(zone)).utcoffset()
        minutes = int(offset.total_seconds() // 60) if offset is not None else 0
        sign = "+" if minutes >= 0 else "\u2212"
        out.append((zone, f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"))
    return tuple(out)
