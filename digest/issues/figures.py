"""Figures per issue, and over time for the dashboard chart.

Attribution (last touch): a bounce, complaint or unsubscribe belongs to the issue of the most
recent message that went to that subscriber before it happened.
- bounced / complaints: the address is on the suppression list for a hard bounce / complaint, and
  this issue's delivery is the last one sent (or failed) to them. Suppression stops every later
  send, so the last delivery is the one that provoked it.
- unsubscribes: the subscriber unsubscribed within ``ATTRIBUTION_WINDOW`` after this issue's message
  reached them, and no later message was sent to them before they did.
- clicks: follows of this issue's tracked links (``/r/``); unique_clicks counts recipients.
There is no open tracking.

Issues pruned from the ledger (``digest prune``, digest/issues/retention.py) are read from the
figures written just before their rows were deleted: ``issue_figures`` and their hourly timeline in
``issue_figure_points``. ``summary_reach`` adds up a summary's messages and clicks over both.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, and_, exists, func, or_, select
from sqlalchemy.orm import Session, aliased

from digest.ingest.models import Summary
from digest.issues.models import Click
from digest.ledger.models import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssueFigurePoint,
    IssueFigures,
    IssueKind,
    SelectionItem,
    SummaryFigures,
)
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression, SuppressionReason

ATTRIBUTION_WINDOW = timedelta(days=7)


@dataclass(frozen=True)
class Point:
    start: datetime  # start of the bucket (UTC)
    sent: int
    clicks: int


@dataclass(frozen=True, kw_only=True)
class Tally:
    """What a set of deliveries (one campaign, or one digest period) did."""

    recipients: int  # rows planned (everyone the issue was addressed to with something to read)
    sent: int
    failed: int
    cancelled: int
    pending: int
    bounced: int
    complaints: int
    unsubscribes: int
    clicks: int
    unique_clicks: int
    timeline: tuple[Point, ...] = ()

    @property
    def click_rate(self) -> float:
        return self.unique_clicks / self.sent if self.sent else 0.0


@dataclass(frozen=True, kw_only=True)
class Figures(Tally):
    issue_id: int
    subject: str
    status: str
    sent_at: datetime | None


@dataclass(frozen=True)
class SummaryClicks:
    """One summary of a send: how many messages carried it, and the follows of its link."""

    summary_id: str
    title: str
    carried: int  # sent messages that carried it
    clicks: int
    unique_clicks: int


@dataclass(frozen=True)
class LinkClicks:
    url: str
    title: str  # the summary the link belongs to ("" for a link that is no summary's)
    clicks: int
    unique_clicks: int


def _last_touch(reached: tuple[DeliveryStatus, ...]) -> ColumnElement[bool]:
    """This delivery is the latest one in ``reached`` states to its subscriber.

    A later row belongs to an issue still open at this row's time (an issue is stamped sent after its
    last row went out), and is reached from those issues through (issue_id, subscriber_id), as
    digest.ledger.readers reaches a reader's rows. Written as a join, so that PostgreSQL probes that
    index per issue; as ``issue_id IN (correlated subquery)`` it hashed every sent row of the ledger.
    """
    later = aliased(Delivery)
    at = func.coalesce(Delivery.sent_at, Delivery.created_at)
    return ~exists(
        select(later.id)
        .select_from(Issue)
        .join(later, and_(later.issue_id == Issue.id, later.subscriber_id == Delivery.subscriber_id))
        .where(
            or_(Issue.sent_at.is_(None), Issue.sent_at >= at),
            later.status.in_(reached),
            func.coalesce(later.sent_at, later.created_at) > at,
        )
        .correlate(Delivery)
    )


def issue_figures(session: Session, issue_id: int, bucket: timedelta = timedelta(hours=1)) -> Figures:
    """The issue's figures: from the ledger, or from what was kept when its rows were pruned.
    ``bucket``: the timeline's resolution (a whole number of hours for a pruned issue)."""
    issue = session.get(Issue, issue_id)
    if issue is None:
        raise LookupError(f"there is no issue {issue_id}")
    kept = session.get(IssueFigures, issue_id)
    if kept is not None:
        return _kept_figures(session, issue, kept, bucket)
    return live_figures(session, issue, bucket)


def live_figures(session: Session, issue: Issue, bucket: timedelta) -> Figures:
    """The figures computed from the ledger rows of ``issue``."""
    return Figures(
        issue_id=issue.id,
        subject=issue.subject,
        status=issue.status,
        sent_at=issue.sent_at,
        **tally_fields(session, Delivery.issue_id == issue.id, bucket),
    )


def tally_fields(session: Session, mine: ColumnElement[bool], bucket: timedelta) -> dict[str, Any]:
    """The fields of a ``Tally`` over the deliveries ``mine`` selects (a condition on Delivery)."""
    counts = Counter(
        dict(session.execute(select(Delivery.status, func.count()).where(mine).group_by(Delivery.status)).all())
    )
    touched = (DeliveryStatus.SENT, DeliveryStatus.FAILED)

    def suppressed_for(reason: SuppressionReason) -> int:
        return (
            session.scalar(
                select(func.count(Delivery.id))
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .join(
                    Suppression, and_(Suppression.value == func.lower(Subscriber.email), Suppression.reason == reason)
                )
                .where(mine, Delivery.status.in_(touched), _last_touch(touched))
            )
            or 0
        )

    # The window is checked in Python: date arithmetic in SQL differs per backend. Both dates are set
    # (the WHERE clause compares them); the None tests are for their nullable column types.
    unsubscribes = sum(
        1
        for sent_at, gone_at in session.execute(
            select(Delivery.sent_at, Subscriber.unsubscribed_at)
            .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
            .where(
                mine,
                Delivery.status == DeliveryStatus.SENT,
                Subscriber.status == SubscriberStatus.UNSUBSCRIBED,
                Subscriber.unsubscribed_at >= Delivery.sent_at,
                _last_touch((DeliveryStatus.SENT,)),
            )
        )
        if gone_at is not None and sent_at is not None and gone_at - sent_at <= ATTRIBUTION_WINDOW
    )
    clicks, unique_clicks = session.execute(
        select(func.count(Click.id), func.count(func.distinct(Click.delivery_id)))
        .join(Delivery, Delivery.id == Click.delivery_id)
        .where(mine)
    ).one()
    return {
        "recipients": sum(counts.values()),
        "sent": counts[DeliveryStatus.SENT],
        "failed": counts[DeliveryStatus.FAILED],
        "cancelled": counts[DeliveryStatus.CANCELLED],
        "pending": counts[DeliveryStatus.PENDING],
        "bounced": suppressed_for(SuppressionReason.HARD_BOUNCE),
        "complaints": suppressed_for(SuppressionReason.COMPLAINT),
        "unsubscribes": unsubscribes,
        "clicks": clicks,
        "unique_clicks": unique_clicks,
        "timeline": _timeline(session, mine, bucket),
    }


def link_clicks(session: Session, mine: ColumnElement[bool]) -> list[LinkClicks]:
    """Follows per tracked link of the deliveries ``mine`` selects, most clicked first."""
    rows = session.execute(
        select(Click.url, func.count(Click.id), func.count(func.distinct(Click.delivery_id)))
        .join(Delivery, Delivery.id == Click.delivery_id)
        .where(mine)
        .group_by(Click.url)
        .order_by(func.count(Click.id).desc(), Click.url)
    ).all()
    titles = dict(
        session.execute(
            select(Summary.source_url, Summary.title).where(Summary.source_url.in_([r[0] for r in rows]))
        ).all()
    )
    return [LinkClicks(url, titles.get(url, ""), n, unique) for url, n, unique in rows]


def summary_clicks(session: Session, mine: ColumnElement[bool]) -> list[SummaryClicks]:
    """Per summary the sent messages carried: how many carried it and how often its link was followed."""
    carried_rows = session.execute(
        select(SelectionItem.summary_id, Summary.title, Summary.source_url, func.count(Delivery.id))
        .join(Delivery, Delivery.selection_id == SelectionItem.selection_id)
        .join(Summary, Summary.id == SelectionItem.summary_id)
        .where(mine, Delivery.status == DeliveryStatus.SENT)
        .group_by(SelectionItem.summary_id, Summary.title, Summary.source_url)
    ).all()
    by_url = {link.url: link for link in link_clicks(session, mine)}
    result = []
    for summary_id, title, url, carried_by in carried_rows:
        link = by_url.get(url or "")
        result.append(
            SummaryClicks(summary_id, title, carried_by, link.clicks if link else 0, link.unique_clicks if link else 0)
        )
    return sorted(result, key=lambda s: (-s.clicks, -s.carried, s.title))


def _timeline(session: Session, mine: ColumnElement[bool], bucket: timedelta) -> tuple[Point, ...]:
    """Messages sent and clicks per time bucket, from the first send to the last event."""
    sent = session.scalars(select(Delivery.sent_at).where(mine, Delivery.sent_at.is_not(None)))
    clicks = session.scalars(select(Click.at).join(Delivery, Delivery.id == Click.delivery_id).where(mine))
    sent_by = Counter(_floor(t, bucket) for t in sent if t is not None)  # never None (the WHERE clause)
    return _points(sent_by, Counter(_floor(t, bucket) for t in clicks))


def timeline(session: Session, issue_id: int, bucket: timedelta) -> tuple[Point, ...]:
    """The timeline of one issue (what ``digest prune`` keeps of it)."""
    return _timeline(session, Delivery.issue_id == issue_id, bucket)


def _kept_figures(session: Session, issue: Issue, kept: IssueFigures, bucket: timedelta) -> Figures:
    sent_by: Counter[datetime] = Counter()
    clicks_by: Counter[datetime] = Counter()
    for point in session.scalars(select(IssueFigurePoint).where(IssueFigurePoint.issue_id == issue.id)):
        start = _floor(point.start, bucket)
        sent_by[start] += point.sent
        clicks_by[start] += point.clicks
    return Figures(
        issue_id=issue.id,
        subject=issue.subject,
        status=issue.status,
        sent_at=issue.sent_at,
        recipients=kept.recipients,
        sent=kept.sent,
        failed=kept.failed,
        cancelled=kept.cancelled,
        pending=kept.pending,
        bounced=kept.bounced,
        complaints=kept.complaints,
        unsubscribes=kept.unsubscribes,
        clicks=kept.clicks,
        unique_clicks=kept.unique_clicks,
        timeline=_points(sent_by, clicks_by),
    )


_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def _floor(at: datetime, bucket: timedelta) -> datetime:
    width = bucket.total_seconds()
    return _EPOCH + timedelta(seconds=(at - _EPOCH).total_seconds() // width * width)


def _points(sent_by: Counter[datetime], clicks_by: Counter[datetime]) -> tuple[Point, ...]:
    return tuple(Point(start, sent_by[start], clicks_by[start]) for start in sorted(sent_by.keys() | clicks_by.keys()))


@dataclass(frozen=True)
class Reach:
    sends: int  # messages sent that carried the summary
    clicks: int  # clicks on its link in those messages


def summary_reach(session: Session, summary_id: str) -> Reach:
    """What every issue did with a summary: the live ledger plus what pruned issues left behind."""
    live = live_summary_figures(session, [], summary_id)
    sends, clicks = live.get(summary_id, (0, 0))
    kept = session.get(SummaryFigures, summary_id)
    if kept is not None:
        sends, clicks = sends + kept.sends, clicks + kept.clicks
    return Reach(sends, clicks)


def live_summary_figures(
    session: Session, where: list[ColumnElement[bool]], summary_id: str | None = None
) -> dict[str, tuple[int, int]]:
    """summary_id -> (messages sent that carried it, clicks on its link in them), over the
    deliveries ``where`` selects (sent ones only), from the ledger."""
    sent = [*where, Delivery.status == DeliveryStatus.SENT]
    mine = [SelectionItem.summary_id == summary_id] if summary_id is not None else []
    sends = dict(
        session.execute(
            select(SelectionItem.summary_id, func.count())
            .select_from(Delivery)
            .join(SelectionItem, SelectionItem.selection_id == Delivery.selection_id)
            .where(*sent, *mine)
            .group_by(SelectionItem.summary_id)
        ).all()
    )
    clicks = dict(
        session.execute(
            select(SelectionItem.summary_id, func.count(Click.id))
            .select_from(Click)
            .join(Delivery, Delivery.id == Click.delivery_id)
            .join(SelectionItem, SelectionItem.selection_id == Delivery.selection_id)
            .join(Summary, and_(Summary.id == SelectionItem.summary_id, Summary.source_url == Click.url))
            .where(*sent, *mine)
            .group_by(SelectionItem.summary_id)
        ).all()
    )
    return {sid: (int(sends.get(sid, 0)), int(clicks.get(sid, 0))) for sid in sends.keys() | clicks.keys()}


def history(session: Session, limit: int = 50) -> list[Figures]:
    """The figures of the latest campaigns, safety alerts and correction notices, oldest first: the
    dashboard's chart over time."""
    ids = session.scalars(
        select(Issue.id)
        .where(
            Issue.kind.in_((IssueKind.CAMPAIGN, IssueKind.ALERT, IssueKind.CORRECTION)), Issue.planned_at.is_not(None)
        )
        .order_by(Issue.planned_at.desc())
        .limit(limit)
    ).all()
    return [issue_figures(session, i, bucket=timedelta(days=1)) for i in reversed(ids)]
