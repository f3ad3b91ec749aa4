"""Campaign planning: audience, pinned summaries first for everyone, then each subscriber's own."""

from __future__ import annotations

from datetime import timedelta

from digest.db import session_scope
from digest.issues.service import start_sending
from digest.ledger.models import Issue, IssueStatus
from digest.selection.service import PlanOptions
from digest.subscribers.models import SuppressionReason
from digest.subscribers.suppression import suppress
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign, add_subscriber, add_summaries, carried_by_email, days_before, summary_record


def _items(services: Services, issue_id: int) -> dict[str, list[str]]:
    with session_scope(services.sessions) as s:
        return carried_by_email(s, issue_id)


def _seed(services: Services, clock: Clock) -> None:
    now = clock()
    study = lambda level: {"type": "trial", "evidence_level": level, "sample_size": 100}  # noqa: E731
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="pin-a", specialties=["dermatology"], published_at=days_before(now, 20)),
            summary_record(id="pin-b", specialties=["cardiology"], study=study(1), published_at=days_before(now, 1)),
            summary_record(
                id="cardio-l3", specialties=["cardiology"], study=study(3), published_at=days_before(now, 1)
            ),
            summary_record(
                id="cardio-l2", specialties=["cardiology"], study=study(2), published_at=days_before(now, 1)
            ),
            summary_record(
                id="cardio-l1", specialties=["cardiology"], study=study(1), published_at=days_before(now, 2)
            ),
            summary_record(id="onc-1", specialties=["oncology"], published_at=days_before(now, 1)),
        )
        past = now - timedelta(days=3)
        add_subscriber(s, "cara@example.org", ["cardiology"], created_at=past)
        add_subscriber(s, "olga@example.org", ["oncology"], created_at=past)
        add_subscriber(s, "neuro@example.org", ["neurology"], created_at=past)
        add_subscriber(s, "paused@example.org", ["cardiology"], created_at=past).status = "paused"
        add_subscriber(s, "blocked@example.org", ["cardiology"], created_at=past)
        suppress(s, "blocked@example.org", SuppressionReason.COMPLAINT)


def test_pinned_first_then_own_ranked_capped(services: Services, clock: Clock) -> None:
    _seed(services, clock)
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, clock(), pinned=["pin-a", "pin-b"])
        plan = start_sending(s, issue_id, clock(), PlanOptions(max_items=4))
    assert plan.deliveries == 3  # active and not suppressed; neurology gets the pins only
    assert _items(services, issue_id) == {
        # pin-b is also new cardiology: carried once, in its pinned place; then the best of the rest.
        "cara@example.org": ["pin-a", "pin-b", "cardio-l1", "cardio-l2"],
        "olga@example.org": ["pin-a", "pin-b", "onc-1"],
        "neuro@example.org": ["pin-a", "pin-b"],
    }


def test_audience_by_specialty_and_no_empty_email(services: Services, clock: Clock) -> None:
    _seed(services, clock)
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, clock(), specialties=["oncology", "neurology"])
        plan = start_sending(s, issue_id, clock(), services.plan_options())
    assert plan.deliveries == 1  # neurology has nothing new and nothing is pinned: no email
    assert _items(services, issue_id) == {"olga@example.org": ["onc-1"]}


def test_campaign_items_are_not_repeated_by_the_next_digest(services: Services, clock: Clock) -> None:
    from digest.selection.service import plan_digests

    _seed(services, clock)
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, clock(), specialties=["oncology"])
        start_sending(s, issue_id, clock(), services.plan_options())
        assert plan_digests(s, clock(), services.plan_options()).deliveries == 1  # cara only: onc-1 already carried


def test_nobody_to_send_to_marks_it_sent(services: Services, clock: Clock) -> None:
    _seed(services, clock)
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, clock(), specialties=["neurology"])
        assert start_sending(s, issue_id, clock(), services.plan_options()).deliveries == 0
        assert s.get(Issue, issue_id).status == IssueStatus.SENT  # type: ignore[union-attr]


def test_pins_reach_everyone_and_nothing_else_is_repeated(services: Services, clock: Clock) -> None:
    """A recipient a first campaign already carried cardiology to still gets the new campaign's
    pin, then only what is new to them; a recipient who had nothing before gets the whole list."""
    _seed(services, clock)
    with session_scope(services.sessions) as s:
        first = add_campaign(s, clock(), specialties=["cardiology"])
        start_sending(s, first, clock(), PlanOptions(max_items=2))
        add_subscriber(s, "carl@example.org", ["cardiology"], created_at=clock() - timedelta(days=3))
        second = add_campaign(s, clock(), specialties=["cardiology"], pinned=["pin-b"])
        start_sending(s, second, clock(), PlanOptions(max_items=3))
    assert _items(services, first) == {"cara@example.org": ["pin-b", "cardio-l1"]}
    assert _items(services, second) == {
        "cara@example.org": ["pin-b", "cardio-l2", "cardio-l3"],
        "carl@example.org": ["pin-b", "cardio-l1", "cardio-l2"],
    }
