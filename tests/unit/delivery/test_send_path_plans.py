"""The send path's per-batch statements read their batch's rows, not the issue's, on a ledger with history.

With statistics that see almost no pending row, ``issue_id IN (sending issues)`` let PostgreSQL start
from the sending issue and read all its pending rows through ix_deliveries_issue_status for each batch
of 25: a cost per batch that grows with the list, and per send with its square (issue 23: 928 -> 74
messages/s at 100k readers on 90 days of history).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from digest.delivery import service
from digest.selection.service import PlanOptions, plan_digests
from digest.subscribers.suppression import suppression_keys
from tests.plans import NOW, READERS, aged_ledger, explain, nodes, pretty, rows_read

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


SUPPRESSED = 3_000


@pytest.fixture
def suppressed(aged: tuple[Engine, list[int]]) -> Iterator[tuple[Engine, list[int]]]:
    """The aged ledger with 3,000 suppression entries added since the statistics were taken (readers
    who unsubscribed during the send), removed after."""
    engine, batch = aged
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO suppressions (value, reason, created_at) "
                "SELECT 'gone' || g || '@example.org', 'unsubscribed', now() FROM generate_series(1, :n) g"
            ),
            {"n": SUPPRESSED},
        )
    try:
        yield engine, batch
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM suppressions WHERE value LIKE 'gone%'"))


def _batch_keys(batch: list[int]) -> list[str]:
    return [key for i in batch for key in suppression_keys(f"reader{i}@example.org")] + ["gone7@example.org"]


def test_the_send_paths_lists_reach_postgresql_typed_as_arrays(aged: tuple[Engine, list[int]]) -> None:
    """Each list goes as one parameter that PostgreSQL types from the statement (``integer[]``,
    ``character varying[]``), not as text it must convert: the statements prepared by the driver
    itself, as the workers' connections prepare them after a few runs."""
    engine, batch = aged
    statements = {
        "blocked": (service._BLOCKED, {"ids": batch, "keys": _batch_keys(batch)}),
        "pending": (service._PENDING_ROWS, {"ids": batch}),
        "take": (
            service._TAKE_ARRAYS,
            {"now": NOW, "ids": batch, "message_ids": [f"<{i}@t>" for i in batch], "variant_keys": [""] * BATCH},
        ),
    }
    with engine.connect() as conn:
        conn.connection.driver_connection.prepare_threshold = 0  # type: ignore[union-attr]
        for statement, params in statements.values():
            conn.execute(statement, params)
        types = {
            row.statement: row.parameter_types
            for row in conn.execute(text("SELECT statement, parameter_types::text[] FROM pg_prepared_statements"))
        }
        conn.rollback()
        conn.invalidate()  # the pool gets a connection that prepares as usual
    blocked = next(t for s, t in types.items() if "FROM suppressions" in s)
    assert blocked[0] == "integer[]" and blocked[-1] == "character varying[]", types
    take = next(t for s, t in types.items() if s.startswith("UPDATE deliveries"))
    assert {"integer[]", "text[]"} <= set(take) and "character varying" not in take, types
    pending = next(t for s, t in types.items() if "FROM deliveries JOIN subscribers" in s and "issues" in s)
    assert pending[0] == "integer[]", types


def test_the_suppression_check_compares_each_entry_with_the_batch_keys_as_they_came(
    suppressed: tuple[Engine, list[int]],
) -> None:
    """The generic plan of the send-time check, with statistics older than the list's entries: its
    condition on ``suppressions`` is the array parameter itself. Cast to ``varchar(320)[]`` (the
    column's length), each element was coerced again for every entry read, an expression a scan
    evaluated per row: 26 ms per batch on 2,000 entries, growing as readers leave."""
    engine, batch = suppressed
    plan = explain(engine, service._BLOCKED, {"ids": batch, "keys": _batch_keys(batch)}, "force_generic_plan")
    conditions = [
        node[key]
        for node in nodes(plan)
        for key in ("Filter", "Index Cond", "Recheck Cond")
        if key in node and "value" in node[key]
    ]
    assert conditions, pretty(plan)
    for condition in conditions:
        assert re.search(r"ANY \(\(?\$\d+\)?(::text\[\])?\)", condition), condition
