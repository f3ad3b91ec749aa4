"""Digest runs: the automatic daily and weekly digests as editors see them, and their pause switch.

A run is one cadence period ("daily:2026-11-27", "weekly:2026-W48"): every delivery the planner
wrote for that period, whichever planning tick wrote it (subscribers in other time zones reach the
same period at other hours). Its figures are the ledger's, counted as for a campaign
(``digest.issues.figures``): who was due (rows planned: due subscribers with something new to
read), sent, failed, bounced, unsubscribed, clicks per summary and per link.

The switch (``DigestFlow``, one row) is read by ``digest.dispatch.send_due`` before planning:
while paused no period is planned, so nothing new goes out; resuming lets the next tick plan the
current period, and the ledger's (subscriber, period) key serves each subscriber once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session

from digest.issues.figures import LinkClicks, SummaryClicks, Tally, link_clicks, summary_clicks, tally_fields
from digest.ledger.models import Delivery, DigestFlow, Issue, IssueKind

FLOW_ROW = 1


@dataclass(frozen=True, kw_only=True)
class RunFigures(Tally):
    period_key: str
    first_planned: datetime  # when the period's first deliveries were planned
    last_sent: datetime | None

    @property
    def cadence(self) -> str:
        return self.period_key.partition(":")[0]

    @property
    def period(self) -> str:
        return self.period_key.partition(":")[2]


@dataclass(frozen=True)
class RunDetail:
    figures: RunFigures
    summaries: list[SummaryClicks]
    links: list[LinkClicks]


@dataclass(frozen=True)
class FlowState:
    paused: bool
    changed_at: datetime | None
    editor_id: int | None


def in_run(period_key: str) -> ColumnElement[bool]:
    """The deliveries of one run (digest issues only: campaigns carry no period key)."""
    return and_(
        Delivery.period_key == period_key,
        Delivery.issue_id.in_(select(Issue.id).where(Issue.kind == IssueKind.DIGEST)),
    )


def recent_runs(session: Session, limit: int = 30, bucket: timedelta = timedelta(hours=1)) -> list[RunFigures]:
    """The latest ``limit`` runs with their figures, newest first."""
    rows = session.execute(
        select(Delivery.period_key, func.min(Delivery.created_at), func.max(Delivery.sent_at))
        .join(Issue, Issue.id == Delivery.issue_id)
        .where(Issue.kind == IssueKind.DIGEST, Delivery.period_key.is_not(None))
        .group_by(Delivery.period_key)
        .order_by(func.min(Delivery.created_at).desc(), Delivery.period_key)
        .limit(limit)
    ).all()
    return [
        RunFigures(
            period_key=key,
            first_planned=first,
            last_sent=last,
            **tally_fields(session, in_run(key), bucket),
        )
        for key, first, last in rows
        if key is not None
    ]


def run_detail(session: Session, period_key: str) -> RunDetail | None:
    """One run's figures, clicks per summary and per link; None if no delivery served that period."""
    first, last = session.execute(
        select(func.min(Delivery.created_at), func.max(Delivery.sent_at)).where(in_run(period_key))
    ).one()
    if first is None:
        return None
    mine = in_run(period_key)
    figures = RunFigures(
        period_key=period_key, first_planned=first, last_sent=last, **tally_fields(session, mine, timedelta(hours=1))
    )
    return RunDetail(figures, summary_clicks(session, mine), link_clicks(session, mine))


def flow_state(session: Session) -> FlowState:
    row = session.get(DigestFlow, FLOW_ROW)
    if row is None:
        return FlowState(paused=False, changed_at=None, editor_id=None)
    return FlowState(paused=row.paused, changed_at=row.changed_at, editor_id=row.editor_id)


def digests_paused(session: Session) -> bool:
    return session.scalar(select(DigestFlow.paused).where(DigestFlow.id == FLOW_ROW)) or False


def set_paused(session: Session, paused: bool, now: datetime, editor_id: int | None = None) -> FlowState:
    """Pause or resume the automatic digests (idempotent: the row is locked while it changes)."""
    row = session.scalar(select(DigestFlow).where(DigestFlow.id == FLOW_ROW).with_for_update())
    if row is None:
        row = DigestFlow(id=FLOW_ROW, paused=paused, changed_at=now, editor_id=editor_id)
        session.add(row)
    elif row.paused != paused:
        row.paused, row.changed_at, row.editor_id = paused, now, editor_id
    session.flush()
    return FlowState(row.paused, row.changed_at, row.editor_id)
