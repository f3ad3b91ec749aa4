"""What a statement's plan reads, on a ledger with history: for the tests that keep the send path's and
planning's costs flat as the ledger ages (issue 23). On an aged ledger PostgreSQL's statistics see the
history (no pending row, no row of today's issue), and a statement it can turn around reads the whole
issue or the whole summary catalogue for every batch or group."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.sql import ClauseElement

from bench.data import ListSpec, generate, reset_schema, with_schema
from bench.history import HistorySpec, generate_history
from digest.db import make_engine
from tests.conftest import PG_URL, require

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)
READERS = 2_000


@contextmanager
def aged_ledger(schema: str, days: int = 30) -> Iterator[Engine]:
    """A PostgreSQL schema with 2,000 readers and ``days`` of daily history, analysed (bench's
    generator: today's planning sees exactly what it would on an empty ledger); dropped after."""
    require(PG_URL is not None, "PostgreSQL", "set DIGEST_TEST_DATABASE_URL")
    assert PG_URL
    engine = make_engine(with_schema(PG_URL, schema))
    reset_schema(engine, schema)
    generate(engine, ListSpec(subscribers=READERS, specialties=6, summaries=60), NOW)
    generate_history(engine, HistorySpec(days=days), NOW)
    try:
        yield engine
    finally:
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA {schema} CASCADE"))
        engine.dispose()


def explain(engine: Engine, statement: ClauseElement, params: dict[str, Any], mode: str) -> dict[str, Any]:
    """The executed plan (EXPLAIN ANALYZE, JSON) of ``statement`` prepared and run once with
    ``plan_cache_mode`` = ``mode`` (``force_generic_plan``: what a prepared statement settles on after
    five runs; ``force_custom_plan``), rolled back."""
    compiled = statement.compile(dialect=postgresql.dialect(), compile_kwargs={"render_postcompile": True})
    names: list[str] = []

    def number(match: re.Match[str]) -> str:
        names.append(match.group(1))
        return f"${len(names)}"

    sql = re.sub(r"%\((\w+)\)s", number, str(compiled))
    values = {**compiled.params, **params}
    arguments = ", ".join(_literal(values[name]) for name in names)
    with engine.connect() as conn:
        conn.exec_driver_sql(f"SET plan_cache_mode = {mode}")
        conn.exec_driver_sql(f"PREPARE probe AS {sql}")
        plan = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE probe({arguments})").scalar_one()
        conn.rollback()
        conn.exec_driver_sql("DEALLOCATE probe")
    return dict((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])


def explain_executed(cursor: Any, statement: str, params: Any) -> dict[str, Any]:
    """The executed plan of a statement about to run on ``cursor`` (a DB-API cursor), with its
    parameters; run inside a savepoint that is rolled back, so the statement itself then runs as usual."""
    cursor.execute("SAVEPOINT probe")
    cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + statement, params)
    plan = cursor.fetchone()[0]
    cursor.execute("ROLLBACK TO SAVEPOINT probe")
    return dict((json.loads(plan) if isinstance(plan, str) else plan)[0]["Plan"])


def _literal(value: Any) -> str:
    if isinstance(value, list):
        return "'{" + ",".join(f'"{v}"' for v in value) + "}'"
    if isinstance(value, datetime):
        return f"'{value.replace(tzinfo=None).isoformat()}'"
    return f"'{value}'"


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every node of a plan, the plan itself first."""
    yield plan
    for child in plan.get("Plans", ()):
        yield from nodes(child)


def rows_read(plan: dict[str, Any], relation: str) -> float:
    """Rows of ``relation`` a plan node produced or threw away, and rows any join threw away, over all
    loops, with its children's."""

    def own(node: dict[str, Any]) -> float:
        keys = ["Rows Removed by Join Filter"]
        if node.get("Relation Name") == relation:
            keys += ["Actual Rows", "Rows Removed by Filter"]
        return sum(node.get(key, 0) for key in keys) * node.get("Actual Loops", 1)

    return sum(own(node) for node in nodes(plan))


def rows_thrown_away(plan: dict[str, Any]) -> float:
    """Rows any plan node read and then dropped by a filter or a join filter, over all loops."""
    dropped = ("Rows Removed by Filter", "Rows Removed by Join Filter")
    return sum(sum(node.get(key, 0) for key in dropped) * node.get("Actual Loops", 1) for node in nodes(plan))


def most_rows(plan: dict[str, Any]) -> float:
    """The most rows any one plan node produced, over all its loops."""
    return max(node.get("Actual Rows", 0) * node.get("Actual Loops", 1) for node in nodes(plan))


def pretty(plan: dict[str, Any]) -> str:
    return json.dumps(plan, indent=1)
