"""Planning: who gets a digest, which summaries, in what order, and never twice."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.engine.default import CACHE_MISS
from sqlalchemy.orm import Session

from digest.db import session_scope
from digest.ledger.carried import summaries_by_delivery
from digest.ledger.models import Delivery, DeliveryStatus
from digest.selection.service import PlanOptions, plan_digests
from digest.subscribers.models import Subscriber
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record


def _items(services: Services, email: str) -> list[list[str]]:
    with session_scope(services.sessions) as s:
        deliveries = s.scalars(
            select(Delivery.id)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(Subscriber.email == email)
            .order_by(Delivery.id)
        ).all()
        carried = summaries_by_delivery(s, deliveries)
        return [carried.get(d, []) for d in deliveries]


def test_ranking_by_evidence_then_size_then_recency_capped(services: Services, clock: Clock) -> None:
    now = clock()
    study = lambda level, n: {"type": "x", "evidence_level": level, "sample_size": n}  # noqa: E731
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="l3", study=study(3, 50_000), published_at=days_before(now, 1)),
            summary_record(id="l1-small", study=study(1, 100), published_at=days_before(now, 1)),
            summary_record(id="l1-big", study=study(1, 9_000), published_at=days_before(now, 2)),
            summary_record(id="l2-new", study=study(2, 500), published_at=days_before(now, 0.5)),
            summary_record(id="l2-old", study=study(2, 500), published_at=days_before(now, 3)),
            summary_record(id="none", study=None, published_at=days_before(now, 0.2)),
        )
        add_subscriber(s, "r@example.org", ["cardiology"], created_at=now - timedelta(days=5))
        plan_digests(s, now, PlanOptions(max_items=5))
    assert _items(services, "r@example.org") == [["l1-big", "l1-small", "l2-new", "l2-old", "l3"]]


def test_new_subscriber_waits_for_their_first_slot(services: Services, clock: Clock) -> None:
    now = clock()  # 12:00 UTC
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(published_at=days_before(now, 1)))
        add_subscriber(s, "late@example.org", ["cardiology"], timezone="UTC", created_at=now - timedelta(hours=1))
        assert plan_digests(s, now, PlanOptions()).deliveries == 0  # joined after today's 07:00 slot
        assert plan_digests(s, now, PlanOptions(include_new_subscribers=True)).deliveries == 1


def test_nothing_twice_and_no_empty_digest(services: Services, clock: Clock) -> None:
    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="s1", published_at=days_before(now, 1)))
        add_subscriber(s, "a@example.org", ["cardiology"], created_at=now - timedelta(days=3))
        assert plan_digests(s, now, PlanOptions()).deliveries == 1
    # Next day: the only summary was already carried; no new digest.
    later = clock.advance(days=1)
    with session_scope(services.sessions) as s:
        assert plan_digests(s, later, PlanOptions()).issue_id is None
    # A failed delivery frees its summaries for a later digest; a sent one never does.
    with session_scope(services.sessions) as s:
        s.execute(Delivery.__table__.update().values(status=DeliveryStatus.FAILED))
        add_summaries(s, summary_record(id="s2", published_at=days_before(later, 0.1)))
    later = clock.advance(days=1)
    with session_scope(services.sessions) as s:
        plan_digests(s, later, PlanOptions())
    assert _items(services, "a@example.org")[-1] == ["s2", "s1"] or _items(services, "a@example.org")[-1] == [
        "s1",
        "s2",
    ]


def test_opted_out_and_suppressed_get_nothing(services: Services, clock: Clock) -> None:
    from digest.subscribers.models import SuppressionReason
    from digest.subscribers.suppression import suppress

    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(published_at=days_before(now, 1)))
        past = now - timedelta(days=3)
        add_subscriber(s, "paused@example.org", ["cardiology"], created_at=past).status = "paused"
        add_subscriber(s, "gone@example.org", ["cardiology"], created_at=past).status = "unsubscribed"
        add_subscriber(s, "bounced@example.org", ["cardiology"], created_at=past)
        suppress(s, "bounced@example.org", SuppressionReason.HARD_BOUNCE)
        add_subscriber(s, "ok@example.org", ["cardiology"], created_at=past)
        result = plan_digests(s, now, PlanOptions())
    assert result.deliveries == 1
    assert _items(services, "ok@example.org") and not _items(services, "paused@example.org")


def test_a_summary_sent_to_one_subscriber_is_still_new_for_another(services: Services, clock: Clock) -> None:
    now = clock()  # 12:00 UTC: Berlin's 07:00 slot has passed, New York's (12:00 UTC) just now
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="s1", published_at=days_before(now, 1)))
        add_subscriber(
            s, "berlin@example.org", ["cardiology"], timezone="Europe/Berlin", created_at=now - timedelta(days=3)
        )
        assert plan_digests(s, now - timedelta(hours=5), PlanOptions()).deliveries == 1
        add_subscriber(
            s, "ny@example.org", ["cardiology"], timezone="America/New_York", created_at=now - timedelta(days=3)
        )
        assert plan_digests(s, now, PlanOptions()).deliveries == 1  # New York, with the summary Berlin got
    assert _items(services, "ny@example.org") == [["s1"]]


def test_a_summary_sent_to_one_subscriber_still_reaches_another(services: Services, clock: Clock) -> None:
    """Regression: the "already carried" check once ignored whose delivery carried the summary."""
    from digest import dispatch

    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="only-one", specialties=["cardiology"], published_at=days_before(now, 1)))
        add_subscriber(s, "first@example.org", ["cardiology"], created_at=now - timedelta(days=3))
    assert dispatch.send_due(services, now).plan.deliveries == 1
    clock.advance(days=1)
    with session_scope(services.sessions) as s:
        add_subscriber(s, "second@example.org", ["cardiology"], created_at=clock() - timedelta(hours=12))
    run = dispatch.send_due(services, clock())
    assert run.plan.deliveries == 1  # the newcomer gets the summary the first reader already had


def test_subscribers_with_the_same_specialties_share_one_list(services: Services, clock: Clock) -> None:
    from digest.ledger.models import Selection

    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="c1", specialties=["cardiology"], published_at=days_before(now, 1)),
            summary_record(id="o1", specialties=["oncology"], published_at=days_before(now, 1)),
        )
        past = now - timedelta(days=3)
        for n in range(3):
            add_subscriber(s, f"cardio{n}@example.org", ["cardiology"], created_at=past)
        add_subscriber(s, "both@example.org", ["oncology", "cardiology"], created_at=past)
        add_subscriber(s, "cardio3@example.org", ["cardiology"], created_at=past)
        assert plan_digests(s, now, PlanOptions()).deliveries == 5
    with session_scope(services.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Selection)) == 2
        # In id order, the deliveries of one list come together (chunks meet few variants).
        lists = s.scalars(select(Delivery.selection_id).order_by(Delivery.id)).all()
        assert lists == sorted(lists)
    assert _items(services, "cardio3@example.org") == [["c1"]]
    assert _items(services, "both@example.org") in ([["c1", "o1"]], [["o1", "c1"]])


def _two_readers_one_had_the_best(session: Session, now: datetime) -> None:
    """Two cardiology readers with the same key; a campaign already carried "best" to one of them."""
    from digest.issues.service import start_sending
    from tests.factories import add_campaign

    add_summaries(
        session,
        summary_record(id="best", study={"type": "x", "evidence_level": 1}, published_at=days_before(now, 1)),
        summary_record(id="next", study={"type": "x", "evidence_level": 2}, published_at=days_before(now, 1)),
    )
    add_subscriber(session, "had-best@example.org", ["cardiology"], created_at=now - timedelta(days=3))
    start_sending(session, add_campaign(session, now, pinned=["best"]), now, PlanOptions(max_items=1))
    add_subscriber(session, "fresh@example.org", ["cardiology"], created_at=now - timedelta(days=3))


def test_a_member_who_had_part_of_the_group_list_gets_the_rest(services: Services, clock: Clock) -> None:
    """Same specialties, edition and watermark, but a campaign already carried one of the
    summaries to one of them: that one gets the group's list without it, the other the whole list."""
    now = clock()
    with session_scope(services.sessions) as s:
        _two_readers_one_had_the_best(s, now)
        assert plan_digests(s, now, PlanOptions()).deliveries == 2
    assert _items(services, "fresh@example.org") == [["best", "next"]]
    assert _items(services, "had-best@example.org") == [["best"], ["next"]]


def test_planning_statements_are_compiled_once_not_in_every_run(services: Services, clock: Clock) -> None:
    """Both passes of planning (the groups, then a member planned alone), run three times: the third
    run takes every statement from SQLAlchemy's compiled cache. Temporary tables described anew in each
    run made each statement naming them a new cache entry, compiled again every minute."""
    now = clock()
    with session_scope(services.sessions) as s:
        _two_readers_one_had_the_best(s, now)

    def plan_then_roll_back() -> list[str]:
        compiled: list[str] = []

        def executed(_conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, _many: bool) -> None:
            if context.cache_hit == CACHE_MISS:
                compiled.append(statement)

        event.listen(services.engine, "before_cursor_execute", executed)
        try:
            with services.sessions() as s:
                assert plan_digests(s, now, PlanOptions()).deliveries == 2  # one of them planned alone
                s.rollback()
        finally:
            event.remove(services.engine, "before_cursor_execute", executed)
        return compiled

    assert any("planning_alone" in statement for statement in plan_then_roll_back())
    plan_then_roll_back()  # the watermark's UPDATE reuses a select the ORM ran first: keyed anew once
    assert plan_then_roll_back() == []
