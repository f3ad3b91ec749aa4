"""Planning's ranking reads the summaries of the lookback window, not the catalogue, on a ledger with history.

The ranking was given the issue's new lists as the groups to rank for; no statistics know a new issue's
rows, so PostgreSQL planned for one group and, for each group's specialties, walked every summary ever
published in them before keeping the window's (issue 23: 0.36 s on an empty ledger, 1.6 s on 90 days,
10k readers). It now ranks for the groups of the analysed members table.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session

from digest.selection.service import PlanOptions, plan_digests
from tests.plans import NOW, READERS, aged_ledger, explain_executed, pretty, rows_thrown_away

pytestmark = pytest.mark.integration


def test_ranking_groups_reads_the_window_not_the_catalogue() -> None:
    plans: list[dict[str, Any]] = []
    with aged_ledger("planning_plans", days=60) as engine:

        @event.listens_for(engine, "before_cursor_execute")
        def capture(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
            if statement.lstrip().startswith("WITH reps") and not plans:  # the first pass: one list per group
                plans.append(explain_executed(cursor, statement, params))

        with engine.connect() as conn:
            catalogue = conn.scalar(text("SELECT count(*) FROM summary_specialties"))
            in_window = conn.scalar(
                text(
                    "SELECT count(*) FROM summary_specialties JOIN summaries ON id = summary_id "
                    "WHERE published_at > :since"
                ),
                {"since": NOW - timedelta(days=7)},
            )
        with Session(engine) as session:
            planned = plan_digests(session, NOW, PlanOptions())
            session.rollback()
    assert planned.deliveries == READERS
    assert catalogue and in_window and catalogue > 5 * in_window  # the history's summaries outnumber the window's
    (plan,) = plans
    # Rows read and dropped again: the bad plan dropped every catalogue summary for each group's
    # specialties (hundreds of thousands); reading from the window drops next to nothing.
    assert rows_thrown_away(plan) < catalogue, pretty(plan)
