"""The campaign state machine, drafts and send times in the editor's time zone."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from digest.db import session_scope
from digest.issues.service import (
    IllegalTransition,
    InvalidIssue,
    IssueDraft,
    IssueNotFound,
    cancel_issue,
    local_to_utc,
    pause_issue,
    resume_issue,
    schedule_issue,
    start_sending,
    unschedule_issue,
    update_issue,
)
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_campaign, add_subscriber, add_summaries, days_before, summary_record


def test_local_send_time_to_utc_across_dst() -> None:
    assert local_to_utc(datetime(2026, 3, 28, 9, 0), "Europe/Berlin") == datetime(2026, 3, 28, 8, 0, tzinfo=UTC)
    assert local_to_utc(datetime(2026, 3, 30, 9, 0), "Europe/Berlin") == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)
    assert local_to_utc(datetime(2026, 4, 5, 7, 0), "Pacific/Auckland") == datetime(2026, 4, 4, 19, 0, tzinfo=UTC)
    with pytest.raises(InvalidIssue, match="does not exist in Europe/Berlin"):
        local_to_utc(datetime(2026, 3, 29, 2, 30), "Europe/Berlin")
    with pytest.raises(InvalidIssue, match="unknown time zone"):
        local_to_utc(datetime(2026, 3, 29, 9, 0), "Europe/Atlantis")


def test_schedule_stores_utc_and_rejects_the_past(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        issue_id = add_campaign(s, clock())
        with pytest.raises(InvalidIssue, match="in the past"):
            schedule_issue(s, issue_id, datetime(2026, 11, 27, 6, 0), "America/New_York", clock())  # 11:00 UTC
    with session_scope(services.sessions) as s:
        issue = schedule_issue(s, issue_id, datetime(2026, 11, 28, 8, 30), "America/New_York", clock())
        assert issue.status == IssueStatus.SCHEDULED
        assert issue.scheduled_at == datetime(2026, 11, 28, 13, 30, tzinfo=UTC) and issue.timezone == "America/New_York"


def test_illegal_transitions_say_what_and_where(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="pin-1", published_at=days_before(clock(), 1)))
        add_subscriber(s, "a@example.org", ["cardiology"])
        issue_id = add_campaign(s, clock(), pinned=["pin-1"])
    with session_scope(services.sessions) as s:
        with pytest.raises(
            IllegalTransition, match=f"cannot pause issue {issue_id}: it is draft, and only a sending issue"
        ):
            pause_issue(s, issue_id)
        with pytest.raises(IllegalTransition, match="cannot resume"):
            resume_issue(s, issue_id)
        with pytest.raises(IllegalTransition, match="cannot unschedule"):
            unschedule_issue(s, issue_id)
        schedule_issue(s, issue_id, datetime(2026, 11, 30, 9, 0), "UTC", clock())
        with pytest.raises(IllegalTransition, match="only a draft can be edited"):
            update_issue(s, issue_id, IssueDraft(subject="Changed"))
        with pytest.raises(IllegalTransition, match="cannot schedule"):
            schedule_issue(s, issue_id, datetime(2026, 11, 30, 10, 0), "UTC", clock())
        unschedule_issue(s, issue_id)
        update_issue(s, issue_id, IssueDraft(subject="Changed", pinned=("pin-1",)))
        start_sending(s, issue_id, clock(), services.plan_options())
        pause_issue(s, issue_id)
        with pytest.raises(IllegalTransition, match=r"cannot pause issue .*: it is paused"):
            pause_issue(s, issue_id)
        resume_issue(s, issue_id)
        cancel_issue(s, issue_id)
        assert s.scalar(select(Delivery.status)) == DeliveryStatus.CANCELLED
        with pytest.raises(IllegalTransition, match="it is cancelled"):
            resume_issue(s, issue_id)
        with pytest.raises(IllegalTransition, match="it is cancelled"):
            cancel_issue(s, issue_id)
        with pytest.raises(IssueNotFound, match="no campaign issue 999999"):
            pause_issue(s, 999999)
        assert s.get(Issue, issue_id).status == IssueStatus.CANCELLED  # type: ignore[union-attr]


def test_draft_validation(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        with pytest.raises(InvalidIssue, match="subject is empty"):
            add_campaign(s, clock(), subject="  \n ")
        with pytest.raises(InvalidIssue, match="unknown specialty 'astrology'"):
            add_campaign(s, clock(), specialties=["astrology"])
        with pytest.raises(InvalidIssue, match="no summary with id 'nope' to pin"):
            add_campaign(s, clock(), pinned=["nope"])
        issue_id = add_campaign(s, clock(), subject="Line\r\nBcc: evil@example.org", specialties=["cardiology"])
        issue = s.get(Issue, issue_id)
        assert issue is not None and issue.subject == "Line Bcc: evil@example.org" and not issue.audience_all
