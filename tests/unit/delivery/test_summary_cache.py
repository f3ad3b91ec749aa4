"""A worker reads each summary in full once, and again only when it changed; an edit made during a
send (text or specialties) makes a new variant, so it is in every message composed after it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.delivery.summary_cache import SummaryCache
from digest.ingest.models import Summary
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_summaries, days_before, planned_issue, summary_record

PEOPLE = [(f"c{i}@example.org", f"C {i}", ["cardiology"]) for i in range(9)]
EDITED = "Re-analysed: HR 0.67."


def _edit_cardio_a(services: Services, now: datetime, **changes: object) -> None:
    with session_scope(services.sessions) as s:
        record = summary_record(id="cardio-a", specialties=["cardiology"], published_at=days_before(now, 1))
        add_summaries(s, {**record, **changes})


def _bodies(sink: SMTPSink) -> list[str]:
    return [m.get_body(("plain",)).get_content() for m in sink.messages]  # type: ignore[union-attr]


def test_unchanged_summaries_are_read_once_per_process(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    ids = planned_issue(services, clock(), PEOPLE)
    cache = services.delivery.summaries

    services.delivery.deliver(ids[:3])
    read_first = cache.loaded
    services.delivery.deliver(ids[3:6])
    services.delivery.deliver(ids[6:])

    assert read_first >= 1
    assert cache.loaded == read_first
    assert len(smtp_sink.received) == 9


def test_a_summary_edited_during_a_send_goes_out_as_edited(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    ids = planned_issue(services, clock(), PEOPLE)
    services.delivery.deliver(ids[:3])
    read_before = services.delivery.summaries.loaded

    _edit_cardio_a(services, clock(), key_takeaway=EDITED)
    services.delivery.deliver(ids[3:])

    assert services.delivery.summaries.loaded == read_before + 1
    bodies = _bodies(smtp_sink)
    assert not any(EDITED in body for body in bodies[:3])
    assert all(EDITED in body for body in bodies[3:])


def test_a_change_of_specialties_alone_moves_the_version(services: Services, clock: Clock) -> None:
    planned_issue(services, clock(), PEOPLE)
    with session_scope(services.sessions) as s:
        before = s.scalar(select(Summary.updated_at).where(Summary.id == "cardio-a"))

    _edit_cardio_a(services, clock(), specialties=["cardiology", "oncology"])

    with session_scope(services.sessions) as s:
        summary = s.get(Summary, "cardio-a")
        assert summary is not None
        assert {sp.slug for sp in summary.specialties} == {"cardiology", "oncology"}
        assert summary.updated_at > before


def test_a_full_cache_still_returns_every_summary_asked_for(services: Services, clock: Clock) -> None:
    planned_issue(services, clock(), PEOPLE[:1])  # summaries cardio-a, onc-a, derm-a
    cache = SummaryCache(size=2)
    ids = ["cardio-a", "onc-a", "derm-a", "withdrawn"]

    with session_scope(services.sessions) as s:
        first = cache.get(s, ids)
        second = cache.get(s, ids)

    assert set(first) == set(second) == {"cardio-a", "onc-a", "derm-a"}
    assert cache.loaded == 4  # three, then the one the size of two had let go
