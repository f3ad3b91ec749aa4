"""The send path's per-batch statements read their batch's rows, not the issue's, on a ledger with history.

On an aged ledger PostgreSQL's statistics see almost no pending row, so a statement that lets it start
from the sending issue reads every pending row of the issue through ix_deliveries_issue_status for each
batch: a cost per batch that grows with the list, and per send with its square (issue 23's aged-ledger
collapse: 928 -> 74 messages/s at 100k readers on 90 days). Each statement is prepared and explained
with PostgreSQL's generic plan (what a prepared statement settles on after five runs) and its custom
plan, and the delivery rows its plan looked at are counted.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import Session
from sqlalchemy.sql import ClauseElement

from bench.data import ListSpec, generate, reset_schema, with_schema
from bench.history import HistorySpec, generate_history
from digest.db import make_engine
from digest.delivery import service
from digest.selection.service import PlanOptions, plan_digests
from tests.conftest import PG_URL, require

pytestmark = pytest.mark.integration

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
READERS = 2_000
BATCH = 25
SCHEMA = "send_path_plans"


@pytest.fixture(scope="module")
def aged() -> Iterator[tuple[Engine, list[int]]]:
    """30 days of daily history for 2,000 readers, analysed; then today's digest planned (its rows
    pending, its issue sending) and the ids of one batch from the middle of it."""
    require(PG_URL is not None, "PostgreSQL", "set DIGEST_TEST_DATABASE_URL")
    assert PG_URL
    engine = make_engine(with_schema(PG_URL, SCHEMA))
    reset_schema(engine, SCHEMA)
    generate(engine, ListSpec(subscribers=READERS, specialties=6, summaries=60), NOW)
    generate_history(engine, HistorySpec(days=30), NOW)
    with Session(engine) as session:
        plan_digests(session, NOW, PlanOptions())
        session.commit()
    with engine.connect() as conn:
        pending = list(conn.scalars(text("SELECT id FROM deliveries WHERE status = 'pending' ORDER BY id")))
    assert len(pending) == READERS
    yield engine, pending[READERS // 2 : READERS // 2 + BATCH]
    with engine.begin() as conn:
        conn.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
    engine.dispose()


def _positional(statement: ClauseElement, params: dict[str, Any]) -> tuple[str, str]:
    """The statement's SQL with ``$n`` parameters, and the matching EXECUTE arguments as literals."""
    compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"render_postcompile": True})
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"${len(names)}"

    sql = re.sub(r"%\((\w+)\)s", number, str(compiled))
    values = {**compiled.params, **params}
    return sql, ", ".join(_literal(values[name]) for name in names)


def _literal(value: Any) -> str:
    if isinstance(value, list):
        return "'{" + ",".join(f'"{v}"' for v in value) + "}'"
    if isinstance(value, datetime):
        return f"'{value.replace(tzinfo=None).isoformat()}'"
    return f"'{value}'"


def _deliveries_looked_at(node: dict[str, Any]) -> float:
    """Delivery rows a plan node produced or threw away, and rows a join threw away, over all loops,
    with its children's. (The per-row look-up of the issue's status is left out: a few hundred issue
    rows, which PostgreSQL reads by primary key or, while they fit a page or two, by scanning.)"""
    keys = ["Rows Removed by Join Filter"]
    if node.get("Relation Name") == "deliveries":
        keys += ["Actual Rows", "Rows Removed by Filter"]
    own = sum(node.get(key, 0) for key in keys) * node.get("Actual Loops", 1)
    return own + sum(_deliveries_looked_at(child) for child in node.get("Plans", ()))


def _explain(engine: Engine, statement: ClauseElement, params: dict[str, Any], mode: str) -> tuple[float, str]:
    sql, arguments = _positional(statement, params)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SET plan_cache_mode = {mode}")
        conn.exec_driver_sql(f"PREPARE probe AS {sql}")
        (plan,) = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probe({arguments})").scalar_one()
        conn.rollback()  # the take's UPDATE is undone: every test sees the batch pending
        conn.exec_driver_sql("DEALLOCATE probe")
    if isinstance(plan, str):
        plan = json.loads(plan)[0]
    return _deliveries_looked_at(plan["Plan"]), json.dumps(plan["Plan"], indent=1)


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
def test_taking_a_batch_reads_its_rows_only(aged: tuple[Engine, list[int]], mode: str) -> None:
    engine, batch = aged
    params = {
        "now": NOW,
        "ids": batch,
        "message_ids": [f"<{i}@test>" for i in batch],
        "variant_keys": ["v"] * len(batch),
    }
    looked_at, plan = _explain(engine, service._TAKE_ARRAYS, params, mode)
    assert looked_at <= 10 * BATCH, plan


@pytest.mark.parametrize("mode", ["force_generic_plan", "force_custom_plan"])
def test_loading_a_batch_reads_its_rows_only(aged: tuple[Engine, list[int]], mode: str) -> None:
    engine, batch = aged
    looked_at, plan = _explain(engine, service._PENDING_ROWS, {"ids": batch}, mode)
    assert looked_at <= 10 * BATCH, plan
