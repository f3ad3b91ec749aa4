"""Plan a campaign: write its ledger rows and items with a few set-based statements.

Recipients are the active, non-suppressed subscribers of the audience (everyone, or those with at
least one of the chosen specialties). Each gets the pinned summaries first, then their own new
summaries (their specialties, ranked as digest/selection/picker.py ranks them) up to max_items in
all (digest/selection/service.py writes the lists and rows). A subscriber with nothing pinned
and nothing new gets no row, hence no email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, exists, func, select, update
from sqlalchemy.orm import Session

from digest.issues.models import IssuePin, issue_specialties
from digest.ledger.models import Delivery, Issue, IssueStatus
from digest.selection.picker import ranked_candidates
from digest.selection.service import PlanOptions, drop_unused_lists, items_planned, plan_deliveries
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression, subscriber_specialties


@dataclass(frozen=True)
class CampaignPlan:
    issue_id: int
    deliveries: int
    items: int


def audience(issue_id: int, audience_all: bool) -> Select[int]:
    """Ids of the active, non-suppressed subscribers an issue is addressed to."""
    suppressed = select(Suppression.id).where(Suppression.value == func.lower(Subscriber.email))
    stmt = select(Subscriber.id).where(Subscriber.status == SubscriberStatus.ACTIVE, ~exists(suppressed))
    if not audience_all:
        chosen = select(issue_specialties.c.specialty_id).where(issue_specialties.c.issue_id == issue_id)
        stmt = stmt.where(
            exists(
                select(1)
                .where(
                    subscriber_specialties.c.subscriber_id == Subscriber.id,
                    subscriber_specialties.c.specialty_id.in_(chosen),
                )
                # Its own scan of the table: planning joins subscriber_specialties around it.
                .correlate_except(subscriber_specialties)
            )
        )
    return stmt


def pinned_ids(session: Session, issue_id: int) -> list[str]:
    return list(
        session.scalars(select(IssuePin.summary_id).where(IssuePin.issue_id == issue_id).order_by(IssuePin.position))
    )


def plan_campaign(session: Session, issue: Issue, now: datetime, options: PlanOptions) -> CampaignPlan:
    """Write the deliveries of a campaign that has just moved to sending.

    Each recipient's list: the pins, then their ranked new summaries without the pins, planned per
    group of recipients as digests are (digest/selection/service.py). No list, no delivery.
    """
    lookback = timedelta(days=options.lookback_days)
    pins = pinned_ids(session, issue.id)
    plan_deliveries(
        session,
        issue.id,
        audience(issue.id, issue.audience_all),
        now,
        lookback,
        lambda ids, history: ranked_candidates(now, lookback, ids, history=history, leave_out=pins),
        options.max_items,
        first=pins,
    )
    drop_unused_lists(session, issue.id)
    count = session.scalar(select(func.count()).select_from(Delivery).where(Delivery.issue_id == issue.id)) or 0
    if not count:
        session.execute(
            update(Issue)
            .where(Issue.id == issue.id)
            .values(status=IssueStatus.SENT, sent_at=now)
            .execution_options(synchronize_session=False)
        )
    session.flush()
    return CampaignPlan(issue_id=issue.id, deliveries=count, items=items_planned(session, issue.id))
