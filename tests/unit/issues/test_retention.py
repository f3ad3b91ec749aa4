"""Retention (``digest prune``): old issues are summarised, then their ledger rows deleted; every
figure reads the same before and after, issues inside the window are untouched, and running it
again (or after an interruption) changes nothing. On SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from digest.db import session_scope, utcnow
from digest.ingest.models import Summary
from digest.issues.figures import Figures, issue_figures, summary_reach
from digest.issues.models import Click
from digest.issues.retention import prunable, prune, summarise
from digest.ledger.carried import carried
from digest.ledger.models import (
    Delivery,
    DeliveryStatus,
    Issue,
    IssueFigures,
    IssueStatus,
    Selection,
    SelectionItem,
    SummaryFigures,
)
from digest.selection.service import plan_digests
from digest.subscribers.lifecycle import unsubscribe
from digest.subscribers.models import Subscriber, SuppressionReason
from digest.subscribers.suppression import suppress
from digest.wiring import Services
from tests.factories import add_summaries, bulk_subscribers, summary_record

NOW = utcnow().replace(hour=12, minute=0, second=0, microsecond=0)
DAYS = (16, 14, 12, 10, 8, 6, 4, 2)  # a digest every other day
KEEP = 9
READERS = [f"reader{i}@example.org" for i in range(6)]


def _send(session: Session, issue_id: int, at: datetime) -> None:
    """What the send path leaves: every row sent, a minute apart, and the issue sent."""
    ids = session.scalars(select(Delivery.id).where(Delivery.issue_id == issue_id).order_by(Delivery.id)).all()
    for n, delivery_id in enumerate(ids):
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(status=DeliveryStatus.SENT, sent_at=at + timedelta(minutes=n), attempts=1)
        )
    session.execute(update(Issue).where(Issue.id == issue_id).values(status=IssueStatus.SENT, sent_at=at))


def _history(services: Services) -> dict[int, int]:
    """A digest every other day to six readers, with clicks, an unsubscribe and a hard bounce;
    returns {days ago: issue id}."""
    issues = {}
    with session_scope(services.sessions) as s:
        bulk_subscribers(s, [(e, "", ["cardiology"]) for e in READERS], created_at=NOW - timedelta(days=30))
    for days in DAYS:
        at = NOW - timedelta(days=days)
        with session_scope(services.sessions) as s:
            add_summaries(
                s,
                *(summary_record(id=f"s{days}-{k}", specialties=["cardiology"],
                                 published_at=(at - timedelta(hours=2)).isoformat()) for k in range(2)),
            )  # fmt: skip
        with session_scope(services.sessions) as s:
            plan = plan_digests(s, at, services.plan_options())
            assert plan.issue_id is not None
            issues[days] = plan.issue_id
            _send(s, plan.issue_id, at)
            # Two readers follow the first summary's link, one of them twice.
            clicking = select(Subscriber.id).where(Subscriber.email.in_(READERS[:2]))
            rows = s.execute(
                carried().where(Delivery.issue_id == plan.issue_id, Delivery.subscriber_id.in_(clicking))
                .where(SelectionItem.position == 1)
            ).all()  # fmt: skip
            for delivery_id, summary_id, _ in rows:
                url = s.get(Summary, summary_id).source_url  # type: ignore[union-attr]
                s.add(Click(delivery_id=delivery_id, url=url, at=at + timedelta(hours=1)))
            s.add(Click(delivery_id=rows[0][0], url=url, at=at))
        with session_scope(services.sessions) as s:
            ids = dict(s.execute(select(Subscriber.email, Subscriber.id)).all())
            if days == 14:  # reader5 leaves the day after the digest 14 days ago
                unsubscribe(s, ids["reader5@example.org"], at + timedelta(days=1), source="test")
            if days == 12:  # reader4's address bounces on the digest 12 days ago
                s.execute(
                    update(Delivery)
                    .where(Delivery.issue_id == plan.issue_id, Delivery.subscriber_id == ids["reader4@example.org"])
                    .values(status=DeliveryStatus.FAILED, error="550 no such user")
                )
                suppress(s, "reader4@example.org", SuppressionReason.HARD_BOUNCE, "test")
    return issues


def _all_figures(services: Services) -> dict[int, Figures]:
    with session_scope(services.sessions) as s:
        return {i: issue_figures(s, i) for i in s.scalars(select(Issue.id).order_by(Issue.id))}


def _reach(services: Services) -> dict[str, tuple[int, int]]:
    with session_scope(services.sessions) as s:
        reach = {sid: summary_reach(s, sid) for sid in s.scalars(select(Summary.id))}
    assert sum(r.clicks for r in reach.values()) == 3 * len(DAYS)  # every click is a summary's
    return {sid: (r.sends, r.clicks) for sid, r in reach.items()}


def _rows(services: Services, model: type, issue_id: int) -> int:
    with session_scope(services.sessions) as s:
        return s.scalar(select(func.count()).select_from(model).where(model.issue_id == issue_id)) or 0


def test_prune_keeps_every_figure_and_touches_nothing_inside_the_window(services: Services) -> None:
    issues = _history(services)
    before, reach_before = _all_figures(services), _reach(services)
    old = [issues[d] for d in DAYS if d > KEEP]
    recent = [issues[d] for d in DAYS if d <= KEEP]
    # The history is worth keeping figures of: sends, a bounce, an unsubscribe and clicks.
    assert before[issues[12]].bounced == 1 and before[issues[14]].unsubscribes == 1
    assert all(before[i].clicks == 3 and before[i].unique_clicks == 2 for i in issues.values())
    rows_recent = {i: _rows(services, Delivery, i) for i in recent}

    report = prune(services.sessions, NOW, KEEP, batch=2)  # tiny batches: several per issue

    assert report.issues == old and report.summarised == len(old)
    assert report.deliveries == sum(before[i].recipients for i in old)
    with session_scope(services.sessions) as s:
        # The old issues' ledger rows are gone (clicks with them), the issue rows stay.
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.issue_id.in_(old))) == 0
        assert s.scalar(select(func.count()).select_from(Selection).where(Selection.issue_id.in_(old))) == 0
        assert s.scalar(select(func.count()).select_from(Click)) == 3 * len(recent)
        assert s.scalar(select(func.count()).select_from(Issue)) == len(DAYS)
        kept = s.scalars(select(IssueFigures.issue_id).where(IssueFigures.deleted_at.is_not(None))).all()
        assert sorted(kept) == old
    assert {i: _rows(services, Delivery, i) for i in recent} == rows_recent
    # Every figure, per issue (the timeline too) and per summary, reads the same.
    assert _all_figures(services) == before
    assert _reach(services) == reach_before
    # Daily buckets (the dashboard's history) come out of the kept hourly points.
    with session_scope(services.sessions) as s:
        daily = issue_figures(s, old[0], bucket=timedelta(days=1))
    assert sum(p.sent for p in daily.timeline) == before[old[0]].sent
    assert sum(p.clicks for p in daily.timeline) == before[old[0]].clicks

    # Again: nothing left to do, nothing counted twice.
    with session_scope(services.sessions) as s:
        summary_rows = sorted((r.summary_id, r.sends, r.clicks) for r in s.scalars(select(SummaryFigures)))
    again = prune(services.sessions, NOW, KEEP)
    assert again.issues == [] and again.deliveries == 0
    assert _all_figures(services) == before and _reach(services) == reach_before
    with session_scope(services.sessions) as s:
        assert sorted((r.summary_id, r.sends, r.clicks) for r in s.scalars(select(SummaryFigures))) == summary_rows


def test_an_interrupted_prune_resumes_without_counting_twice(services: Services) -> None:
    issues = _history(services)
    before, reach_before = _all_figures(services), _reach(services)
    first = issues[16]
    with session_scope(services.sessions) as s:  # stopped after summarising, before deleting
        assert summarise(s, first, NOW) is True
    with session_scope(services.sessions) as s:
        assert summarise(s, first, NOW) is False  # a second prune does not add it again
    report = prune(services.sessions, NOW, KEEP)
    assert report.issues == [issues[d] for d in DAYS if d > KEEP]
    assert report.summarised == len(report.issues) - 1
    assert _rows(services, Delivery, first) == 0
    assert _all_figures(services) == before and _reach(services) == reach_before


def test_an_unfinished_issue_holds_back_itself_and_everything_after_it(services: Services) -> None:
    issues = _history(services)
    with session_scope(services.sessions) as s:
        s.execute(update(Issue).where(Issue.id == issues[12]).values(status=IssueStatus.PAUSED))
        assert prunable(s, NOW, KEEP) == [issues[16], issues[14]]
    assert prune(services.sessions, NOW, KEEP).issues == [issues[16], issues[14]]
    assert _rows(services, Delivery, issues[12]) > 0 and _rows(services, Delivery, issues[10]) > 0


def test_cli_prune_refuses_a_window_shorter_than_the_attribution_and_reports_what_it_did(
    cli, services: Services
) -> None:  # type: ignore[no-untyped-def]
    issues = _history(services)
    short = cli("prune", "--keep", "3")
    assert short.exit_code == 2 and "at least 8 days" in short.stderr
    dry = cli("prune", "--keep", str(KEEP), "--dry-run")
    old = [issues[d] for d in DAYS if d > KEEP]
    assert dry.exit_code == 0 and f"4 issue(s) would be pruned: {', '.join(map(str, old))}" in dry.stdout
    assert _rows(services, Delivery, issues[16]) > 0  # a dry run deletes nothing
    done = cli("prune", "--keep", str(KEEP))
    assert done.exit_code == 0 and "pruned 4 issue(s) (4 summarised now)" in done.stdout
    assert _rows(services, Delivery, issues[16]) == 0 and _rows(services, Delivery, issues[8]) > 0
