"""The send path's per-batch statements read their batch's rows, not the issue's, on a ledger with history.

With statistics that see almost no pending row, ``issue_id IN (sending issues)`` let PostgreSQL start
from the sending issue and read all its pending rows through ix_deliveries_issue_status for each batch
of 25: a cost per batch that grows with the list, and per send with its square (issue 23: 928 -> 74
messages/s at 100k readers on 90 days of history).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from digest.delivery import service
from digest.selection.service import PlanOptions, plan_digests
from tests.plans import NOW, READERS, aged_ledger, explain, pretty, rows_read

pytestmark = pytest.mark.integration

BATCH = 25


@pytest.fixture(scope="module")
def aged() -> Iterator[tuple[Engine, list[int]]]:
    """Today's digest planned on 30 days of history (its rows pending, its issue sending), and the ids
    of one batch from the middle of it."""
    with aged_ledger("send_path_plans") as engine:
        with Session(engine) as session:
            plan_digests(session, NOW, PlanOptions())
            session.commit()
        with engine.connect() as conn:
            pending = list(conn.scalars(text("SELECT id FROM deliveries WHERE status = 'pending' ORDER BY id")))
        assert len(pending) == READERS
        yield engine, pending[READERS // 2 : READERS // 2 + BATCH]


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
def test_taking_a_batch_reads_its_rows_only(aged: tuple[Engine, list[int]], mode: str) -> None:
    engine, batch = aged
    params = {
        "now": NOW,
        "ids": batch,
        "message_ids": [f"<{i}@test>" for i in batch],
        "variant_keys": ["v"] * len(batch),
    }
    plan = explain(engine, service._TAKE_ARRAYS, params, mode)
    assert rows_read(plan, "deliveries") <= 10 * BATCH, pretty(plan)


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
def test_loading_a_batch_reads_its_rows_only(aged: tuple[Engine, list[int]], mode: str) -> None:
    engine, batch = aged
    plan = explain(engine, service._PENDING_ROWS, {"ids": batch}, mode)
    assert rows_read(plan, "deliveries") <= 10 * BATCH, pretty(plan)
