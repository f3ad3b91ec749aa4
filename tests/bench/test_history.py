"""The benchmark's generated history (bench/history.py) against the real PostgreSQL: what the planner
would have written, constraints back in place, and today's planning unchanged by it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from bench.data import ListSpec, generate, reset_schema, with_schema
from bench.history import HistorySpec, generate_history, history_days
from digest.db import make_engine
from digest.selection.service import PlanOptions, plan_digests
from tests.conftest import PG_URL, require

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
LIST = ListSpec(subscribers=400, specialties=6, summaries=60)


@pytest.fixture
def bench_engine() -> Iterator[Engine]:
    require(PG_URL is not None, "PostgreSQL", "set DIGEST_TEST_DATABASE_URL")
    assert PG_URL
    engine = make_engine(with_schema(PG_URL, "bench_history"))
    reset_schema(engine, "bench_history")
    generate(engine, LIST, NOW)
    yield engine
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA bench_history CASCADE"))
    engine.dispose()


def _one(engine: Engine, sql: str) -> object:
    with engine.connect() as conn:
        return conn.scalar(text(sql))


def test_history_days_end_the_day_before_todays_period() -> None:
    assert [key for key, _ in history_days(NOW, 3)] == ["daily:2026-12-02", "daily:2026-12-03", "daily:2026-12-04"]
    # Before 07:00 UTC today's period is still yesterday's: the history ends the day before that.
    early = datetime(2026, 12, 5, 6, 0, tzinfo=UTC)
    assert history_days(early, 1)[0][0] == "daily:2026-12-03"


def test_history_is_what_daily_planning_leaves_and_today_plans_as_on_an_empty_ledger(bench_engine: Engine) -> None:
    with Session(bench_engine) as session:  # planned, then rolled back: the ledger stays empty
        empty_plan = plan_digests(session, NOW, PlanOptions())
        session.rollback()
    spec = HistorySpec(days=5, churn_per_day=0.01)
    written = generate_history(bench_engine, spec, NOW)

    former = round(LIST.subscribers * 0.01 * 5)
    assert written.former_readers == former
    assert _one(bench_engine, "SELECT count(*) FROM issues WHERE kind = 'digest' AND status = 'sent'") == 5
    # One delivery per reader and day; former readers got theirs up to the day they left.
    per_day = _rows(bench_engine, "SELECT period_key, count(*) FROM deliveries GROUP BY 1 ORDER BY 1")
    assert [key for key, _ in per_day] == [key for key, _ in history_days(NOW, 5)]
    assert all(LIST.subscribers <= n <= LIST.subscribers + former for _, n in per_day)
    assert sum(n for _, n in per_day) == written.deliveries
    assert _one(bench_engine, "SELECT count(*) FROM deliveries WHERE selection_id IS NULL") == 0
    # Lists are shared by planning group: far fewer selections than deliveries, 8 items each.
    assert written.selections < written.deliveries / 5
    assert _one(bench_engine, "SELECT count(DISTINCT n) FROM (SELECT count(*) AS n FROM selection_items "
                              "GROUP BY selection_id) AS s") == 1  # fmt: skip
    assert written.selection_items == written.selections * spec.items_per_digest
    # The sprinkle: clicks on sent deliveries, unsubscribes and hard bounces of former readers.
    assert written.clicks > 0
    assert _one(bench_engine, "SELECT count(*) FROM clicks JOIN deliveries d ON d.id = delivery_id "
                              "WHERE d.status <> 'sent'") == 0  # fmt: skip
    unsubscribed = _one(bench_engine, "SELECT count(*) FROM subscribers WHERE status = 'unsubscribed'")
    bounced = _one(bench_engine, "SELECT count(*) FROM suppressions WHERE reason = 'hard_bounce'")
    assert isinstance(unsubscribed, int) and isinstance(bounced, int)
    assert unsubscribed + bounced == former and unsubscribed > 0 and bounced > 0
    assert _one(bench_engine, "SELECT count(*) FROM deliveries WHERE status = 'failed'") == bounced
    # Nobody got anything after they left.
    assert (
        _one(
            bench_engine,
            "SELECT count(*) FROM deliveries d JOIN subscribers s ON s.id = d.subscriber_id "
            "WHERE d.sent_at > s.unsubscribed_at",
        )
        == 0
    )
    # The exactly-once constraints and every index are back.
    constraints = {r[0] for r in _rows(bench_engine, "SELECT conname FROM pg_constraint "
                                                     "WHERE conrelid = 'deliveries'::regclass")}  # fmt: skip
    assert {"uq_deliveries_issue_id_subscriber_id", "uq_deliveries_period_key_subscriber_id",
            "ck_deliveries_status"} <= constraints  # fmt: skip
    assert (
        _one(
            bench_engine,
            "SELECT count(*) FROM pg_indexes WHERE tablename = 'selection_items' AND schemaname = current_schema()",
        )
        == 2
    )
    assert _one(bench_engine, "SELECT count(*) FROM pg_class WHERE relname LIKE 'bench_history_%'") == 0

    # Today's planning, on top of the history: the same deliveries and items as on the empty ledger.
    with Session(bench_engine) as session:
        plan = plan_digests(session, NOW, PlanOptions())
    assert (plan.deliveries, plan.items) == (empty_plan.deliveries, empty_plan.items)
    assert plan.deliveries == LIST.subscribers


def _rows(engine: Engine, sql: str) -> list[tuple[object, ...]]:
    with engine.connect() as conn:
        return [tuple(r) for r in conn.execute(text(sql))]
