"""A reader's rows are reached issue by issue, and every lookup by reader reads that reader's rows, on a
ledger with history.

No index of ``deliveries`` leads with the subscriber (digest/ledger/readers.py): such an index took a
random leaf page per message on an aged ledger. These tests explain, as they run, the statements of
each lookup that starts from a reader (the one-click unsubscribe's cancel, the data export, planning's
"never carried to them before", the figures' last touch) on 30 days of daily history for 2,000
readers (62,000 delivery rows) and count the delivery rows each plan reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text, update
from sqlalchemy.orm import Session

from digest.issues.figures import issue_figures
from digest.ledger.models import Delivery, Issue, IssueKind, SelectionItem
from digest.rights import export_subscriber
from digest.selection.picker import ranked_candidates
from digest.selection.service import PlanOptions, plan_digests
from digest.subscribers.lifecycle import unsubscribe
from digest.subscribers.models import Subscriber
from tests.plans import NOW, READERS, aged_ledger, explain_executed, pretty, rows_read

pytestmark = pytest.mark.integration

DAYS = 30


@pytest.fixture(scope="module")
def aged() -> Iterator[Engine]:
    """Today's digest planned (sending, its rows pending) on 30 days of history, with the statistics
    of the history (as on an aged ledger, where planning leaves ANALYZE to autovacuum): they see
    almost no pending row."""
    with aged_ledger("reader_lookups", days=DAYS) as engine:
        with Session(engine) as session:
            assert plan_digests(session, NOW, PlanOptions()).deliveries == READERS
            session.commit()
        yield engine


def _plans(engine: Engine, run: Any) -> list[tuple[str, dict[str, Any]]]:
    """Every statement on ``deliveries`` that ``run(session)`` executes, with its executed plan; rolled back."""
    plans: list[tuple[str, dict[str, Any]]] = []

    def capture(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        if "deliveries" in statement and not many:
            plans.append((statement, explain_executed(cursor, statement, params)))

    event.listen(engine, "before_cursor_execute", capture)
    try:
        with Session(engine) as session:
            run(session)
            session.rollback()
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert plans, "no statement read deliveries"
    return plans


def _reader(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.scalar(text("SELECT min(subscriber_id) FROM deliveries WHERE status = 'pending'")))


def test_no_index_of_deliveries_leads_with_the_reader(aged: Engine) -> None:
    with aged.connect() as conn:
        leading = conn.scalars(
            text(
                "SELECT a.attname FROM pg_index i JOIN pg_attribute a "
                "ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0] "
                "WHERE i.indrelid = 'deliveries'::regclass"
            )
        ).all()
    assert "subscriber_id" not in leading, leading
    assert "period_key" in leading  # the one-digest-per-period key, period first


def test_a_one_click_unsubscribe_reads_the_readers_open_rows(aged: Engine) -> None:
    reader = _reader(aged)
    plans = _plans(aged, lambda s: unsubscribe(s, reader, NOW, source="test"))
    for statement, plan in plans:
        assert rows_read(plan, "deliveries") <= 5, f"{statement}\n{pretty(plan)}"


def test_an_export_reads_the_readers_rows(aged: Engine) -> None:
    reader = _reader(aged)

    def run(session: Session) -> None:
        row = session.get(Subscriber, reader)
        assert row is not None
        assert len(export_subscriber(session, row, NOW)["deliveries"]) == DAYS + 1

    for statement, plan in _plans(aged, run):
        assert rows_read(plan, "deliveries") <= 3 * (DAYS + 1), f"{statement}\n{pretty(plan)}"


def test_ranking_without_what_they_were_sent_reads_the_window(aged: Engine) -> None:
    """The per-reader pass searches the digests of the lookback window and the campaigns, for each
    (reader, candidate): before, every delivery the reader ever had."""
    with aged.connect() as conn:
        readers = list(conn.scalars(text("SELECT id FROM subscribers WHERE status = 'active' ORDER BY id LIMIT 5")))
    ranked = ranked_candidates(NOW, timedelta(days=7), select(Subscriber.id).where(Subscriber.id.in_(readers)))

    def run(session: Session) -> None:
        # As if they had had no digest yet: today's list (pending, so carried) is then what history takes out.
        session.execute(update(Subscriber).where(Subscriber.id.in_(readers)).values(last_digest_at=None))
        carried_today = session.scalars(
            select(SelectionItem.summary_id)
            .join(Delivery, Delivery.selection_id == SelectionItem.selection_id)
            .where(Delivery.subscriber_id == readers[0], Delivery.status == "pending")
        ).all()
        chosen = session.execute(select(ranked.c.subscriber_id, ranked.c.summary_id)).all()
        assert chosen and carried_today
        assert not {summary for who, summary in chosen if who == readers[0]} & set(carried_today)

    with Session(aged) as session:
        searched = session.scalar(
            select(text("count(*)"))
            .select_from(Issue)
            .where((Issue.kind != IssueKind.DIGEST) | (Issue.planned_at > NOW - timedelta(days=7)))
        )
    assert searched is not None and searched < DAYS
    for statement, plan in _plans(aged, run):
        # Per reader and candidate at most one row per searched issue.
        assert rows_read(plan, "deliveries") <= len(readers) * 60 * (searched + 1), f"{statement}\n{pretty(plan)}"
        assert rows_read(plan, "deliveries") < READERS * DAYS / 10, f"{statement}\n{pretty(plan)}"


def test_an_issues_figures_read_its_rows_and_its_readers_later_ones(aged: Engine) -> None:
    with aged.connect() as conn:
        first = conn.scalar(text("SELECT min(id) FROM issues"))
    plans = _plans(aged, lambda s: issue_figures(s, first))
    for statement, plan in plans:
        assert rows_read(plan, "deliveries") <= 3 * READERS, f"{statement}\n{pretty(plan)}"
