"""Urgent safety alerts: one summary, now, to the subscribers of its specialties, outside their cadence.

Sent by an editor (the dashboard's "Send safety alert") or, for a record flagged ``urgent``, by the
next send cycle's review of the new versions (digest/corrections/review.py).
An alert is a notice issue (digest/corrections/service.py ``start_notice``) addressed to the active,
unsuppressed subscribers of any of the summary's specialties who have not turned "safety alerts" off;
sending re-checks unsubscribes and suppression per message. One alert per summary version: flagging
the same record again, or a second click, sends nothing more.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session

from digest.corrections.service import notice_key, start_notice
from digest.ingest.models import Summary, summary_specialties
from digest.ledger.models import Issue, IssueKind, Selection
from digest.rendering.notices import subject
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression, subscriber_specialties


def alert_audience(summary_id: str) -> Select[int]:
    """Subscriber ids an alert about the summary goes to."""
    suppressed = select(Suppression.id).where(Suppression.value == func.lower(Subscriber.email))
    specialties = select(summary_specialties.c.specialty_id).where(summary_specialties.c.summary_id == summary_id)
    follows = (
        select(1)
        .where(
            subscriber_specialties.c.subscriber_id == Subscriber.id,
            subscriber_specialties.c.specialty_id.in_(specialties),
        )
        .correlate_except(subscriber_specialties)
    )
    return (
        select(Subscriber.id)
        .where(
            Subscriber.status == SubscriberStatus.ACTIVE,
            Subscriber.safety_alerts.is_(True),
            ~exists(suppressed),
            exists(follows),
        )
        .order_by(Subscriber.id)
    )


def send_alert(session: Session, summary: Summary, note: str, now: datetime) -> int | None:
    """Start the safety alert about the summary's current version (its issue id, dispatched by the
    caller or the next send cycle); None if one was already started for this version."""
    key = notice_key(IssueKind.ALERT, summary)
    sent_before = exists(
        select(1)
        .select_from(Selection)
        .join(Issue, Issue.id == Selection.issue_id)
        .where(Selection.key == key, Issue.kind == IssueKind.ALERT)
    )
    if session.scalar(select(sent_before)):
        return None
    title = subject("alert", summary.title)  # in English; each reader's copy in their locale
    issue_id, _ = start_notice(session, IssueKind.ALERT, title, note, summary, alert_audience(summary.id), now)
    return issue_id


def alert_for_record(session: Session, summary: Summary, now: datetime) -> int | None:
    """The alert a record flagged ``urgent`` starts: its safety text (or key takeaway) as the note."""
    return send_alert(session, summary, summary.safety or summary.key_takeaway, now)
