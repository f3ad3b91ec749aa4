"""Planning: write the ledger for every due subscriber in a few set-based statements.

One planning run creates one digest Issue, one pending Delivery per due subscriber who has something
new, and the DeliveryItems each of them will carry. Nothing is rendered or sent here; the ledger is
the hand-off to delivery. A subscriber with nothing new gets no row, hence no email.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Select, delete, exists, func, insert, literal, select, text, update
from sqlalchemy.orm import Session

from digest.delivery.models import Delivery, DeliveryItem, DeliveryStatus, Issue, IssueKind, IssueStatus
from digest.events.models import Suppression
from digest.selection.picker import has_candidate, ranked_candidates
from digest.selection.planner import Period, Schedule, current_period
from digest.subscribers.models import Subscriber, SubscriberStatus


@dataclass(frozen=True)
class PlanOptions:
    max_items: int = 8
    lookback_days: int = 7
    # Demo and operator catch-up: serve the current period to everyone active, even those who
    # joined after its slot. Normal runs only serve periods that began after the subscriber joined.
    include_new_subscribers: bool = False
    # Summary ids an editor pinned: first in every digest that carries them, in this order.
    pinned: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlanResult:
    issue_id: int | None
    deliveries: int
    items: int


def due_periods(session: Session, now: datetime) -> list[tuple[Schedule, Period]]:
    """The current period of every distinct schedule among active subscribers."""
    rows = session.execute(
        select(Subscriber.cadence, Subscriber.timezone, Subscriber.send_hour, Subscriber.send_weekday)
        .where(Subscriber.status == SubscriberStatus.ACTIVE)
        .distinct()
    )
    return [(sched, current_period(sched, now)) for sched in (Schedule(*row) for row in rows)]


def _due_subscribers(schedule: Schedule, period: Period, now: datetime, options: PlanOptions) -> Select[tuple[int]]:
    lookback = timedelta(days=options.lookback_days)
    # NOT IN, not a correlated NOT EXISTS: this SELECT feeds an INSERT into deliveries, and on a
    # fresh table the planner picked a nested-loop anti join that re-scanned the table being filled
    # once per subscriber (quadratic: 11 minutes for 200k). NOT IN over a NOT NULL column is the
    # same test, run once as a hashed subplan.
    served = select(Delivery.subscriber_id).where(Delivery.period_key == period.key)
    suppressed = select(Suppression.id).where(Suppression.value == func.lower(Subscriber.email))
    stmt = select(Subscriber.id).where(
        Subscriber.status == SubscriberStatus.ACTIVE,
        Subscriber.cadence == schedule.cadence,
        Subscriber.timezone == schedule.timezone,
        Subscriber.send_hour == schedule.send_hour,
        Subscriber.send_weekday == schedule.send_weekday,
        Subscriber.id.not_in(served),
        ~exists(suppressed),
        has_candidate(now, lookback),
    )
    if not options.include_new_subscribers:
        stmt = stmt.where(func.coalesce(Subscriber.confirmed_at, Subscriber.created_at) <= period.slot)
    return stmt


def plan_digests(session: Session, now: datetime, options: PlanOptions) -> PlanResult:
    """Plan the cadence digest for everyone due at ``now``; returns the new issue (or None)."""
    issue = Issue(
        kind=IssueKind.DIGEST,
        status=IssueStatus.SENDING,
        subject=f"Evidence digest {now:%Y-%m-%d %H:%M} UTC",
        planned_at=now,
    )
    session.add(issue)
    session.flush()
    for schedule, period in due_periods(session, now):
        due = _due_subscribers(schedule, period, now, options)
        session.execute(
            insert(Delivery).from_select(
                ["issue_id", "subscriber_id", "period_key", "status", "variant_key", "attempts", "created_at"],
                select(
                    literal(issue.id),
                    due.subquery().c.id,
                    literal(period.key),
                    literal(DeliveryStatus.PENDING.value),
                    literal(""),
                    literal(0),
                    literal(now, Delivery.created_at.type),
                ),
            )
        )
    return _finish_plan(session, issue, now, options)


def _finish_plan(session: Session, issue: Issue, now: datetime, options: PlanOptions) -> PlanResult:
    """Attach the ranked items to the issue's deliveries and stamp the subscribers' last digest."""
    planned = select(Delivery.subscriber_id).where(Delivery.issue_id == issue.id)
    _refresh_statistics(session)
    count = session.scalar(select(func.count()).select_from(planned.subquery())) or 0
    if not count:
        session.execute(delete(Issue).where(Issue.id == issue.id))
        session.flush()
        return PlanResult(issue_id=None, deliveries=0, items=0)
    ranked = ranked_candidates(now, timedelta(days=options.lookback_days), planned, options.pinned)
    items = session.execute(
        insert(DeliveryItem).from_select(
            ["delivery_id", "summary_id", "position"],
            select(Delivery.id, ranked.c.summary_id, ranked.c.rank)
            .join(ranked, ranked.c.subscriber_id == Delivery.subscriber_id)
            .where(Delivery.issue_id == issue.id, ranked.c.rank <= options.max_items),
        )
    ).rowcount
    session.execute(
        update(Subscriber).where(Subscriber.id.in_(planned)).values(last_digest_at=now).execution_options(
            synchronize_session=False
        )
    )
    session.flush()
    return PlanResult(issue_id=issue.id, deliveries=count, items=items)


def _refresh_statistics(session: Session) -> None:
    """On PostgreSQL, let the query planner see the rows just inserted (ANALYZE runs inside the
    transaction and counts them) and give the ranking sort room in memory. Without this the planner
    takes the new issue for a few dozen rows and picks nested loops and on-disk sorts: with 100k
    subscribers that made planning several times slower."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("ANALYZE deliveries"))
        session.execute(text("SET LOCAL work_mem = '128MB'"))


def pending_page(session: Session, issue_id: int, size: int, *, after: int = 0) -> list[int]:
    """One page of the issue's unsent delivery ids above ``after``, in id order.

    Keyset pagination: each page is a short query in its own transaction, so memory stays flat for any
    list size and no transaction stays open while chunks are queued (or run in-process).
    """
    return list(
        session.scalars(
            select(Delivery.id)
            .where(
                Delivery.issue_id == issue_id,
                Delivery.id > after,
                Delivery.status.in_((DeliveryStatus.PENDING, DeliveryStatus.SENDING)),
            )
            .order_by(Delivery.id)
            .limit(size)
        )
    )


def stalled_issues(session: Session, now: datetime, lease: timedelta) -> list[int]:
    """Sending issues with rows still to send whose chunks were last queued over a lease ago.

    Their tasks were lost (or their rows went back to pending after a pause); queueing them again is
    safe because delivery claims each row once. Recently dispatched issues are left alone, so a long
    send is not queued again every minute.
    """
    open_rows = select(Delivery.id).where(
        Delivery.issue_id == Issue.id,
        (Delivery.status == DeliveryStatus.PENDING)
        | ((Delivery.status == DeliveryStatus.SENDING) & (Delivery.lease_until < now)),
    )
    return list(
        session.scalars(
            select(Issue.id).where(
                Issue.status == IssueStatus.SENDING,
                (Issue.dispatched_at.is_(None)) | (Issue.dispatched_at < now - lease),
                exists(open_rows),
            )
        )
    )
