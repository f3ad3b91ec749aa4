"""Retention: ``digest prune --keep DAYS`` summarises old issues, then deletes their ledger rows.

For each issue past the window, oldest first:
1. one transaction writes its figures (``issue_figures``, the hourly ``issue_figure_points``) exactly
   as ``digest.issues.figures`` computes them from the ledger, and adds its sends and clicks to each
   summary's ``summary_figures``. That row is the issue's marker: an issue is summarised once, and
   a prune that was stopped resumes with the deleting;
2. its deliveries (their clicks go with them, by the foreign key's cascade), then its selections,
   are deleted in short transactions of at most ``batch`` primary keys each, by id range: no long
   DELETE, no lock held for long, no long transaction holding back vacuum;
3. ``deleted_at`` is stamped.

Deliveries are not partitioned, for the reasons in docs/scaling.md: PostgreSQL requires every
unique constraint of a partitioned table to include the partition key, and the two that make
sending exactly-once cannot take a period or an issue without losing what they guarantee.

What it never touches: issues inside the window; issues not finished (sending, paused) and every
issue after the first such one (so that the last-touch attribution of a live issue's bounces and
unsubscribes, which looks at later deliveries, cannot change under it); issue rows themselves (the
issue list and the figures pages keep showing them). The window must cover the figures'
attribution window and the planning lookback ("was this summary carried to them before").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, delete, func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from digest.db import session_scope
from digest.issues.figures import ATTRIBUTION_WINDOW, live_figures, live_summary_figures, timeline
from digest.ledger.models import (
    Delivery,
    Issue,
    IssueFigurePoint,
    IssueFigures,
    IssueStatus,
    Selection,
    SummaryFigures,
)
from digest.progress import Progress, silent

DONE = (IssueStatus.SENT, IssueStatus.CANCELLED)
UNFINISHED = (IssueStatus.SENDING, IssueStatus.PAUSED)
BATCH = 5_000


@dataclass
class PruneReport:
    issues: list[int]  # pruned (or finished pruning) in this run
    summarised: int = 0  # of which summarised in this run (the others were resumed)
    deliveries: int = 0
    selections: int = 0


def minimum_keep_days(lookback_days: int) -> int:
    """The shortest window: past the figures' attribution window and the planning lookback."""
    return max(ATTRIBUTION_WINDOW.days, lookback_days) + 1


def prunable(session: Session, now: datetime, keep_days: int) -> list[int]:
    """Issues to prune at ``now``: finished, dated before the window, and older than every issue
    still sending or paused; or already summarised and not yet fully deleted. Oldest first."""
    cutoff = now - timedelta(days=keep_days)
    when = func.coalesce(Issue.sent_at, Issue.planned_at, Issue.created_at)
    first_open = session.scalar(select(func.min(Issue.id)).where(Issue.status.in_(UNFINISHED)))
    old = select(Issue.id).where(Issue.status.in_(DONE), when < cutoff)
    if first_open is not None:
        old = old.where(Issue.id < first_open)
    unfinished = select(IssueFigures.issue_id).where(IssueFigures.deleted_at.is_(None))
    done = select(IssueFigures.issue_id).where(IssueFigures.deleted_at.is_not(None))
    return sorted(set(session.scalars(old.where(Issue.id.not_in(done)))) | set(session.scalars(unfinished)))


def prune(
    sessions: sessionmaker[Session],
    now: datetime,
    keep_days: int,
    *,
    batch: int = BATCH,
    progress: Progress = silent,
) -> PruneReport:
    """Summarise and delete every prunable issue, reporting to ``progress`` after each one."""
    with session_scope(sessions) as session:
        issues = prunable(session, now, keep_days)
    report = PruneReport(issues=issues)
    for n, issue_id in enumerate(issues, start=1):
        with session_scope(sessions) as session:
            report.summarised += summarise(session, issue_id, now)
        report.deliveries += _delete_in_batches(sessions, Delivery, Delivery.issue_id == issue_id, batch)
        report.selections += _delete_in_batches(sessions, Selection, Selection.issue_id == issue_id, batch)
        with session_scope(sessions) as session:
            session.execute(update(IssueFigures).where(IssueFigures.issue_id == issue_id).values(deleted_at=now))
        progress(f"issue {issue_id}", n, len(issues))
    return report


def summarise(session: Session, issue_id: int, now: datetime) -> bool:
    """Write the issue's figures and add its summaries' sends and clicks, unless done before
    (then False). Locks the issue row, so two prunes cannot count an issue twice."""
    issue = session.get(Issue, issue_id, with_for_update=True)
    if issue is None or session.get(IssueFigures, issue_id) is not None:
        return False
    figures = live_figures(session, issue, timedelta(hours=1))
    session.add(
        IssueFigures(
            issue_id=issue_id, recipients=figures.recipients, sent=figures.sent, failed=figures.failed,
            cancelled=figures.cancelled, pending=figures.pending, bounced=figures.bounced,
            complaints=figures.complaints, unsubscribes=figures.unsubscribes, clicks=figures.clicks,
            unique_clicks=figures.unique_clicks, summarised_at=now,
        )
    )  # fmt: skip
    points = timeline(session, issue_id, timedelta(hours=1))
    if points:
        session.execute(
            insert(IssueFigurePoint),
            [{"issue_id": issue_id, "start": p.start, "sent": p.sent, "clicks": p.clicks} for p in points],
        )
    for summary_id, (sends, clicks) in live_summary_figures(session, [Delivery.issue_id == issue_id]).items():
        _add_summary_figures(session, summary_id, sends, clicks)
    session.flush()
    return True


def _add_summary_figures(session: Session, summary_id: str, sends: int, clicks: int) -> None:
    """summary_figures += (sends, clicks), as one upsert."""
    make = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = make(SummaryFigures).values(summary_id=summary_id, sends=sends, clicks=clicks)
    session.execute(
        stmt.on_conflict_do_update(
            index_elements=[SummaryFigures.summary_id],
            set_={"sends": SummaryFigures.sends + sends, "clicks": SummaryFigures.clicks + clicks},
        )
    )


def _delete_in_batches(sessions: sessionmaker[Session], model: Any, where: ColumnElement[bool], batch: int) -> int:
    """Delete the rows of ``model`` that ``where`` selects, ``batch`` ids at a time, each range in
    its own short transaction. An issue's rows are written together, so their ids are close; ids
    of other issues inside a range are left alone by ``where``."""
    with session_scope(sessions) as session:
        low, high = session.execute(select(func.min(model.id), func.max(model.id)).where(where)).one()
    deleted = 0
    if low is None:
        return 0
    while low <= high:
        with session_scope(sessions) as session:
            result = session.execute(
                delete(model)
                .where(where, model.id >= low, model.id < low + batch)
                .execution_options(synchronize_session=False)
            )
            deleted += result.rowcount or 0  # type: ignore[attr-defined]
        low += batch
    return deleted
