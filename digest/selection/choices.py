"""A subscriber's choices in words, and when their first digest comes: what the "you are subscribed"
page and the confirmation email repeat back, so a reader can see at once what they signed up for,
in their own language (digest/i18n.py)."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from babel.dates import format_date, get_day_names

from digest.config import DEFAULT_LOCALE
from digest.i18n import N_, translations
from digest.ingest.specialties import specialty_name
from digest.selection.planner import Schedule, next_slot
from digest.subscribers.models import Cadence, Edition
from digest.subscribers.schema import iana_timezones

EDITIONS = {  # in English; translated where shown
    Edition.CLINICIAN.value: N_("For clinicians: key takeaway, outcomes and study details first"),
    Edition.PATIENT.value: N_("For patients and carers: what each study means, in plain language"),
}


@dataclass(frozen=True)
class Choices:
    specialties: tuple[str, ...]  # display names
    schedule: str  # "Every day at 07:00" / "Every Monday at 07:00"
    timezone: str
    edition: str
    first_digest: str  # "Sunday 6 December at 07:00 (Europe/Berlin)"
    locale: str = DEFAULT_LOCALE

    def lines(self) -> list[tuple[str, str]]:
        """(label, value) rows, in the order the forms ask for them."""
        gettext = translations(self.locale).gettext
        how_often = gettext("%(schedule)s, %(zone)s time") % {"schedule": self.schedule, "zone": self.timezone}
        return [
            (gettext("Specialties"), ", ".join(self.specialties) or gettext("none")),
            (gettext("How often"), how_often),
            (gettext("Edition"), self.edition),
        ]


def describe_choices(
    specialties: Sequence[str],
    cadence: str,
    timezone: str,
    edition: str,
    send_hour: int,
    send_weekday: int,
    now: datetime,
    locale: str = DEFAULT_LOCALE,
) -> Choices:
    """The choices in words; ``first_digest`` is the first slot after ``now`` (a subscriber confirmed
    after a slot is first served at the next one: see ``digest.selection.service``)."""
    gettext = translations(locale).gettext
    days = get_day_names("wide", locale=locale)  # as in a sentence: "Monday", "lunes"
    hour = f"{send_hour:02d}:00"
    if cadence == Cadence.WEEKLY:
        schedule = gettext("Every %(weekday)s at %(time)s") % {"weekday": days[send_weekday], "time": hour}
    else:
        schedule = gettext("Every day at %(time)s") % {"time": hour}
    slot = next_slot(Schedule(cadence, timezone, send_hour, send_weekday), now).astimezone(ZoneInfo(timezone))
    # TRANSLATORS: a CLDR date pattern (EEEE weekday, d day, MMMM month): "Sunday 6 December".
    day = format_date(slot, gettext("EEEE d MMMM"), locale=locale)
    first = gettext("%(day)s at %(time)s (%(zone)s time)") % {"day": day, "time": f"{slot:%H:%M}", "zone": timezone}
    return Choices(
        specialties=tuple(specialty_name(s, locale) for s in specialties),
        schedule=schedule,
        timezone=timezone,
        edition=gettext(EDITIONS[edition]) if edition in EDITIONS else edition,
        first_digest=first,
        locale=locale,
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
