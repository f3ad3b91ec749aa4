"""The exactly-once protocol: claims, redelivered chunks, crashed workers' leases, render passes."""

from __future__ import annotations

from sqlalchemy import func, select

from digest.db import session_scope
from digest.delivery.models import Delivery, DeliveryStatus
from digest.delivery.sink import SMTPSink
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


def test_rows_of_a_crashed_worker_are_reclaimed_when_the_lease_runs_out(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    ids = planned_issue(services, clock(), PEOPLE)
    dead = services.delivery.claim(ids[:4], "worker-that-died")  # claimed, then the process was killed
    assert dead == ids[:4]

    early = services.delivery.deliver(ids)  # the live lease keeps the rows away from everyone else
    assert early.sent == 2 and early.skipped == 4
    assert _statuses(services) == {DeliveryStatus.SENT: 2, DeliveryStatus.SENDING: 4}

    clock.advance(seconds=services.settings.lease_seconds + 1)
    late = services.delivery.deliver(ids)

    assert late.sent == 4 and late.skipped == 2
    assert sorted(r.rcpt_tos[0] for r in smtp_sink.received) == sorted(p[0] for p in PEOPLE)
    with session_scope(services.sessions) as s:
        assert s.scalar(select(func.max(Delivery.attempts))) == 2  # the reclaimed rows: two claims
        assert not s.scalar(select(func.count()).where(Delivery.claim_token == "worker-that-died"))


def test_a_stale_worker_cannot_send_rows_reclaimed_from_it(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    ids = planned_issue(services, clock(), PEOPLE[:2])
    services.delivery.claim(ids, "slow-worker")
    clock.advance(seconds=services.settings.lease_seconds + 1)
    assert services.delivery.claim(ids, "new-worker") == ids
    # The slow worker wakes up and tries to send under its old token: its rows are gone.
    with session_scope(services.sessions) as s:
        mine = s.scalar(select(func.count()).where(Delivery.claim_token == "slow-worker"))
    assert mine == 0


def test_render_passes_equal_distinct_variants_not_subscribers(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
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
