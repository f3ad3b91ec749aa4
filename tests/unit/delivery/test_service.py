"""The exactly-once protocol: redelivered and duplicated chunks, paused issues, render passes."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import func, select, update

from digest.db import session_scope
from digest.delivery.service import DeliverReport
from digest.delivery.sink import SMTPSink
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import planned_issue

PEOPLE = [(f"p{i}@example.org", f"P {i}", ["cardiology"]) for i in range(6)]


def _statuses(svc: Services) -> dict[str, int]:
    with session_scope(svc.sessions) as s:
        return dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())


def test_redelivered_chunk_sends_nothing_twice(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    ids = planned_issue(services, clock(), PEOPLE)

    first = services.delivery.deliver(ids)
    again = services.delivery.deliver(ids)  # the broker hands the same task out a second time

    assert first.sent == 6 and again.sent == 0 and again.skipped == 6
    message_ids = [str(m["Message-ID"]) for m in smtp_sink.messages]
    assert len(message_ids) == 6 == len(set(message_ids))
    with session_scope(services.sessions) as s:
        stored = set(s.scalars(select(Delivery.message_id)))
        assert stored == set(message_ids)
        assert all(s.scalars(select(Delivery.provider_message_id)))


def test_a_paused_issue_sends_nothing_and_its_rows_stay_pending(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    ids = planned_issue(services, clock(), PEOPLE)
    with session_scope(services.sessions) as s:
        s.execute(update(Issue).values(status=IssueStatus.PAUSED))

    report = services.delivery.deliver(ids)

    assert report.sent == 0 and report.skipped == 6 and not smtp_sink.received
    assert _statuses(services) == {DeliveryStatus.PENDING: 6}


def test_two_workers_with_the_same_chunk_send_each_row_once(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    """A duplicated task: both runs load the same pending rows and compose every message; each
    batch's take locks its rows, so the second to get there finds them sent and skips them."""
    people = [(f"w{i}@example.org", f"W {i}", ["cardiology"]) for i in range(40)]
    ids = planned_issue(services, clock(), people)
    start = threading.Barrier(2)

    def run() -> DeliverReport:
        start.wait()
        return services.delivery.deliver(ids)

    with ThreadPoolExecutor(2) as pool:
        reports = list(pool.map(lambda _: run(), range(2)))

    assert sorted(r.rcpt_tos[0] for r in smtp_sink.received) == sorted(p[0] for p in people)
    assert sum(r.sent for r in reports) == 40 and sum(r.skipped for r in reports) == 40
    assert _statuses(services) == {DeliveryStatus.SENT: 40}
    with session_scope(services.sessions) as s:
        assert set(s.scalars(select(Delivery.attempts))) == {1}


def test_render_passes_equal_distinct_variants_not_subscribers(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    combos = [["cardiology"], ["oncology"], ["cardiology", "oncology"], ["dermatology"]]
    people = [(f"r{i}@example.org", f"Reader {i}", combos[i % len(combos)]) for i in range(100)]
    people += [(f"q{i}@example.org", "", ["cardiology"]) for i in range(20)]  # no name: same variant
    ids = planned_issue(services, clock(), people)
    before = services.renderer.passes

    for start in range(0, len(ids), 50):
        services.delivery.deliver(ids[start : start + 50])

    assert len(smtp_sink.received) == 120
    with session_scope(services.sessions) as s:
        variants = s.scalar(select(func.count(func.distinct(Delivery.variant_key))))
    assert variants == len(combos)
    assert services.renderer.passes - before == len(combos)


def test_a_reader_who_changes_specialties_after_planning_gets_the_heading_of_what_was_selected(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    from digest.subscribers.lifecycle import update_preferences
    from digest.subscribers.models import Subscriber
    from digest.subscribers.schema import PreferencesIn

    ids = planned_issue(services, clock(), PEOPLE[:1])  # chosen for cardiology
    with session_scope(services.sessions) as s:
        reader = s.scalars(select(Subscriber)).one()
        update_preferences(s, reader, PreferencesIn(specialties=["oncology"]), paused=False, now=clock())

    assert services.delivery.deliver(ids).sent == 1

    [message] = smtp_sink.messages
    text = message.get_body(("plain",)).get_content()
    assert "Cardiology" in text  # the heading and the "why" lines name what the list was chosen for
    assert "Oncology" not in text
