"""Migration 0018 on a database that already has a ledger: the upgrade keeps every row, ``digest
prune`` then works on the old rows, and the downgrade leaves the ledger as it found it."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import Engine, func, inspect, select, text, update
from sqlalchemy.orm import sessionmaker

from digest.db import session_scope, utcnow
from digest.ingest.specialties import seed_specialties
from digest.issues.figures import issue_figures
from digest.issues.retention import prune
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.schema import downgrade, upgrade
from digest.selection.service import PlanOptions, plan_digests
from tests.factories import add_summaries, bulk_subscribers, summary_record
from tests.integration.test_migrations import empty_engine  # noqa: F401 (the fixture: SQLite and PostgreSQL)

LEDGER = ("issues", "deliveries", "selections", "selection_items")


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {t: conn.execute(text(f"SELECT count(*) FROM {t}")).scalar_one() for t in LEDGER}


def test_upgrade_keeps_an_existing_ledger_which_prune_then_summarises(empty_engine: Engine) -> None:  # noqa: F811
    # The ledger is written at head (the models are head's), then the schema taken back to 0016 with
    # its rows: the state of a database that never had 0018.
    upgrade(empty_engine)
    sessions = sessionmaker(empty_engine)
    now = utcnow().replace(microsecond=0)
    with session_scope(sessions) as s:
        seed_specialties(s)
        bulk_subscribers(
            s, [(f"r{i}@example.org", "", ["cardiology"]) for i in range(5)], created_at=now - timedelta(days=60)
        )
    for days in (40, 20, 2):  # three digests, two of them past a 10-day window
        at = now - timedelta(days=days)
        with session_scope(sessions) as s:
            add_summaries(s, summary_record(id=f"m{days}", published_at=(at - timedelta(hours=1)).isoformat()))
        with session_scope(sessions) as s:
            plan = plan_digests(s, at, PlanOptions())
            s.execute(
                update(Delivery)
                .where(Delivery.issue_id == plan.issue_id)
                .values(status=DeliveryStatus.SENT, sent_at=at)
            )
            s.execute(update(Issue).where(Issue.id == plan.issue_id).values(status=IssueStatus.SENT, sent_at=at))
    downgrade(empty_engine, "0016")
    assert "issue_figures" not in set(inspect(empty_engine).get_table_names())
    before = _counts(empty_engine)
    assert before["deliveries"] == 15

    upgrade(empty_engine)  # 0018: three new tables, nothing rewritten
    assert _counts(empty_engine) == before
    assert {"issue_figures", "issue_figure_points", "summary_figures"} <= set(inspect(empty_engine).get_table_names())
    with session_scope(sessions) as s:
        figures = {i: issue_figures(s, i) for i in s.scalars(select(Issue.id))}
    report = prune(sessions, now, 10)
    assert len(report.issues) == 2 and report.deliveries == 10
    with session_scope(sessions) as s:
        assert {i: issue_figures(s, i) for i in s.scalars(select(Issue.id))} == figures
        assert s.scalar(select(func.count()).select_from(Delivery)) == 5

    downgrade(empty_engine, "0016")  # the figure tables go; the ledger that is left stays
    assert "issue_figures" not in set(inspect(empty_engine).get_table_names())
    assert _counts(empty_engine)["deliveries"] == 5
