"""Plan a campaign: write its ledger rows and items with a few set-based statements.

Recipients are the active, non-suppressed subscribers of the audience (everyone, or those with at
least one of the chosen specialties). Each gets the pinned summaries first, then their own new
summaries (their specialties, ranked as digest/selection/picker.py ranks them) up to max_items in
all. A subscriber with nothing pinned and nothing new gets no row, hence no email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, exists, func, insert, literal, select, update
from sqlalchemy.orm import Session

from digest.delivery.models import Delivery, DeliveryItem, DeliveryStatus, Issue, IssueStatus
from digest.events.models import Suppression
from digest.issues.models import IssuePin, issue_specialties
from digest.selection.picker import has_candidate, ranked_candidates
from digest.selection.service import PlanOptions
from digest.subscribers.models import Subscriber, SubscriberStatus, subscriber_specialties


@dataclass(frozen=True)
class CampaignPlan:
    issue_id: int
    deliveries: int
    items: int


def audience(issue_id: int, audience_all: bool) -> Select[tuple[int]]:
    """Ids of the active, non-suppressed subscribers an issue is addressed to."""
    suppressed = select(Suppression.id).where(Suppression.value == func.lower(Subscriber.email))
    stmt = select(Subscriber.id).where(Subscriber.status == SubscriberStatus.ACTIVE, ~exists(suppressed))
    if not audience_all:
        chosen = select(issue_specialties.c.specialty_id).where(issue_specialties.c.issue_id == issue_id)
        stmt = stmt.where(
            exists(
                select(1).where(
                    subscriber_specialties.c.subscriber_id == Subscriber.id,
                    subscriber_specialties.c.specialty_id.in_(chosen),
                )
            )
        )
    return stmt


def pinned_ids(session: Session, issue_id: int) -> list[str]:
    return list(session.scalars(select(IssuePin.summary_id).where(IssuePin.issue_id == issue_id).order_by(IssuePin.position)))


def plan_campaign(session: Session, issue: Issue, now: datetime, options: PlanOptions) -> CampaignPlan:
    """Write the deliveries of a campaign that has just moved to sending."""
    lookback = timedelta(days=options.lookback_days)
    pins = len(pinned_ids(session, issue.id))
    recipients = audience(issue.id, issue.audience_all)
    if not pins:
        recipients = recipients.where(has_candidate(now, lookback))
    session.execute(
        insert(Delivery).from_select(
            ["issue_id", "subscriber_id", "status", "variant_key", "attempts", "created_at"],
            select(
                literal(issue.id),
                recipients.subquery().c.id,
                literal(DeliveryStatus.PENDING.value),
                literal(""),
                literal(0),
                literal(now, Delivery.created_at.type),
            ),
        )
    )
    planned = select(Delivery.subscriber_id).where(Delivery.issue_id == issue.id)
    count = session.scalar(select(func.count()).select_from(planned.subquery())) or 0
    items = 0
    if pins:
        items += session.execute(
            insert(DeliveryItem).from_select(
                ["delivery_id", "summary_id", "position"],
                select(Delivery.id, IssuePin.summary_id, IssuePin.position)
                .join(IssuePin, IssuePin.issue_id == Delivery.issue_id)
                .where(Delivery.issue_id == issue.id),
            )
        ).rowcount
    if options.max_items > pins:
        # The pinned items are now carried by a pending delivery, so the picker no longer counts
        # them as new: the ranks below are those of the remaining summaries, without gaps.
        ranked = ranked_candidates(now, lookback, planned)
        items += session.execute(
            insert(DeliveryItem).from_select(
                ["delivery_id", "summary_id", "position"],
                select(Delivery.id, ranked.c.summary_id, ranked.c.rank + pins)
                .join(ranked, ranked.c.subscriber_id == Delivery.subscriber_id)
                .where(Delivery.issue_id == issue.id, ranked.c.rank <= options.max_items - pins),
            )
        ).rowcount
    if not count:
        session.execute(
            update(Issue).where(Issue.id == issue.id).values(status=IssueStatus.SENT, sent_at=now).execution_options(
                synchronize_session=False
            )
        )
    session.flush()
    return CampaignPlan(issue_id=issue.id, deliveries=count, items=items)
