"""Cadence digests at 07:00 local time in each subscriber's zone, across daylight-saving changes.

dispatch_due is driven hour by hour with the test clock over each zone's DST weekend; what arrives at
the SMTP server is counted per subscriber per local day.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from email.utils import parsedate_to_datetime
from zoneinfo import ZoneInfo

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, summary_record
from workers import tasks

# (first hour, end) in UTC around each change: New York springs forward on 8 March 2026, Berlin on
# 29 March, Auckland falls back on 5 April.
WINDOWS = (
    (datetime(2026, 3, 6, tzinfo=UTC), datetime(2026, 3, 10, tzinfo=UTC)),
    (datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 3, 31, tzinfo=UTC)),
    (datetime(2026, 4, 3, tzinfo=UTC), datetime(2026, 4, 7, tzinfo=UTC)),
)
DAILY = {
    "auckland@example.org": "Pacific/Auckland",
    "newyork@example.org": "America/New_York",
    "berlin@example.org": "Europe/Berlin",
}
WEEKLY = "berlin-weekly@example.org"  # Sundays at 07:00 in Berlin


def _slots(tz: str, start: datetime, end: datetime, weekday: int | None = None) -> set[date]:
    """Local dates whose 07:00 falls inside (start, end)."""
    zone = ZoneInfo(tz)
    days = (start.date() + timedelta(days=n) for n in range(-1, (end - start).days + 2))
    return {
        d
        for d in days
        if start < datetime.combine(d, time(7), tzinfo=zone) < end and (weekday is None or d.weekday() == weekday)
    }


def test_digest_at_seven_local_once_per_period_across_dst(
    services: Services, clock: Clock, smtp_sink: SMTPSink
) -> None:
    with session_scope(services.sessions) as s:
        created = datetime(2026, 1, 1, tzinfo=UTC)
        for email, tz in DAILY.items():
            add_subscriber(s, email, ["cardiology"], timezone=tz, created_at=created)
        add_subscriber(
            s, WEEKLY, ["cardiology"], timezone="Europe/Berlin", cadence="weekly", send_weekday=6, created_at=created
        )
        records = []
        for start, end in WINDOWS:  # a new summary every six hours, so every slot has something new
            at = start - timedelta(days=1, hours=-3)  # 03:00, 09:00, ...: never exactly on a slot
            while at < end:
                records.append(summary_record(published_at=at.isoformat()))
                at += timedelta(hours=6)
        add_summaries(s, *records)

    for start, end in WINDOWS:
        clock.now = start
        tasks.dispatch_due()  # catch up the periods between windows, then count from here
        smtp_sink.clear()
        while clock.advance(hours=1) < end:
            tasks.dispatch_due()

        got: dict[str, list[datetime]] = defaultdict(list)
        for r in smtp_sink.received:
            got[r.rcpt_tos[0]].append(parsedate_to_datetime(r.message["Date"]))
        expected = {email: _slots(tz, start, end) for email, tz in DAILY.items()}
        expected[WEEKLY] = _slots("Europe/Berlin", start, end, weekday=6)
        for email, wanted in expected.items():
            tz = ZoneInfo(DAILY.get(email, "Europe/Berlin"))
            local = [d.astimezone(tz) for d in got[email]]
            assert all((t.hour, t.minute) == (7, 0) for t in local), (email, [str(t) for t in local])
            days = [t.date() for t in local]
            assert len(days) == len(set(days)), f"{email} got two digests on one day: {local}"
            assert set(days) == wanted, (email, sorted(days), sorted(wanted))

    # Around the last change, in UTC: the same 07:00 local an hour later once the clocks went back.
    sent = {(r.rcpt_tos[0], parsedate_to_datetime(r.message["Date"])) for r in smtp_sink.received}
    assert ("auckland@example.org", datetime(2026, 4, 3, 18, 0, tzinfo=UTC)) in sent  # Sat 4 Apr 07:00 NZDT
    assert ("auckland@example.org", datetime(2026, 4, 4, 19, 0, tzinfo=UTC)) in sent  # Sun 5 Apr 07:00 NZST
