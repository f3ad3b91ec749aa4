"""What an issue does to its audience: counts per variant from a rolled-back plan (nothing is
written) that equal what the ledger has once it is sent; who is inside the audience; duplicating
and deleting drafts."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select

from digest.db import session_scope
from digest.dispatch import send_issue
from digest.issues.models import IssuePin
from digest.issues.outlook import in_audience, outlook
from digest.issues.service import IllegalTransition, delete_draft, draft_of, duplicate_issue, get_campaign
from digest.ledger.models import Delivery, Issue, IssueStatus
from digest.subscribers.models import Subscriber
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign, add_subscriber, add_summaries, days_before, summary_record


def _campaign(services: Services, clock: Clock) -> int:
    """Cardiology audience, two pins: five readers get the pins only, two also get four new
    oncology items (6 in all); one dermatology reader is outside the audience."""
    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="pin-1", specialties=["cardiology"], published_at=days_before(now, 20)),
            summary_record(id="pin-2", specialties=["cardiology"], published_at=days_before(now, 21)),
            *(
                summary_record(id=f"onc-{n}", specialties=["oncology"], published_at=days_before(now, n / 10 + 0.1))
                for n in range(4)
            ),
        )
        for n in range(5):
            add_subscriber(s, f"cardio{n}@example.org", ["cardiology"], created_at=now)
        for n in range(2):
            add_subscriber(s, f"both{n}@example.org", ["cardiology", "oncology"], created_at=now)
        add_subscriber(s, "derm@example.org", ["dermatology"], created_at=now)
        return add_campaign(s, now, subject="Two trials", specialties=["cardiology"], pinned=["pin-1", "pin-2"])


def test_counts_per_variant_before_sending_write_nothing_and_match_the_ledger(services: Services, clock: Clock) -> None:
    issue_id = _campaign(services, clock)
    before = outlook(services.sessions, issue_id, clock(), services.plan_options())
    assert (before.audience, before.recipients, before.planned) == (7, 7, False)
    assert before.by_size == ((2, 5), (6, 2))
    assert before.describe() == "5 recipients get 2 summaries, 2 get 6"
    with session_scope(services.sessions) as s:
        assert s.scalar(select(func.count(Delivery.id))) == 0  # the plan was rolled back
        assert get_campaign(s, issue_id).status == IssueStatus.DRAFT
    send_issue(services, issue_id)
    after = outlook(services.sessions, issue_id, clock(), services.plan_options())
    assert after.planned and after.by_size == before.by_size
    with session_scope(services.sessions) as s:
        assert s.scalar(select(func.count(Delivery.id)).where(Delivery.issue_id == issue_id)) == 7


def test_who_is_in_the_audience(services: Services, clock: Clock) -> None:
    issue_id = _campaign(services, clock)
    with session_scope(services.sessions) as s:
        ids = dict(s.execute(select(Subscriber.email, Subscriber.id)).all())
        assert in_audience(s, issue_id, ids["cardio0@example.org"])
        assert not in_audience(s, issue_id, ids["derm@example.org"])


def test_duplicate_copies_content_and_delete_removes_only_drafts(services: Services, clock: Clock) -> None:
    issue_id = _campaign(services, clock)
    with session_scope(services.sessions) as s:
        copy = duplicate_issue(s, issue_id, None, clock())
        original, duplicate = draft_of(s, get_campaign(s, issue_id)), draft_of(s, copy)
        copy_id = copy.id
    assert duplicate.subject == "Copy of Two trials" and copy_id != issue_id
    assert (duplicate.specialties, duplicate.pinned, duplicate.intro) == (
        original.specialties,
        original.pinned,
        original.intro,
    )
    with session_scope(services.sessions) as s:
        delete_draft(s, copy_id)
    with session_scope(services.sessions) as s:
        assert s.get(Issue, copy_id) is None
        assert s.scalar(select(func.count()).select_from(IssuePin).where(IssuePin.issue_id == copy_id)) == 0
    send_issue(services, issue_id)
    with session_scope(services.sessions) as s, pytest.raises(IllegalTransition, match="only drafts can be deleted"):
        delete_draft(s, issue_id)
    with session_scope(services.sessions) as s:
        assert s.get(Issue, issue_id) is not None
