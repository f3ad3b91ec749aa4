"""Planning, statement by statement: ``python -m bench.planning_profile --subscribers 1000000``.

Generates the benchmark's list in the given database (wiped, as ``bench`` does), plans the digest due
at a fixed time with ``plan_digests`` and prints the slowest statements with their time. The plan is
rolled back unless ``--commit``, so it can be run again on the same list (``--reuse``); a rolled-back
run leaves dead index entries behind, so compare runs on a freshly generated list.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.orm import Session

import digest.models  # noqa: F401  (every table, for the ORM's flush order)
from bench.data import ListSpec, ensure_database, generate, reset_schema, with_schema
from digest.db import make_engine
from digest.selection.service import PlanOptions, plan_digests

NOW = datetime(2026, 12, 5, 9, 30, tzinfo=UTC)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--database-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/bench")
    parser.add_argument("--schema", default="public", help="PostgreSQL schema to wipe and use")
    parser.add_argument("--reuse", action="store_true", help="plan on the list already there")
    parser.add_argument("--commit", action="store_true", help="commit the plan (timed)")
    parser.add_argument("--top", type=int, default=12)
    args = parser.parse_args(argv)
    ensure_database(args.database_url)
    engine = make_engine(with_schema(args.database_url, args.schema))
    if not args.reuse:
        generating = time.perf_counter()
        reset_schema(engine, args.schema)
        generate(engine, ListSpec(subscribers=args.subscribers), NOW)
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        print(f"list of {args.subscribers:,} generated in {time.perf_counter() - generating:.1f} s")
    timings: list[tuple[float, str]] = []

    @event.listens_for(engine, "before_cursor_execute")
    def started(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        conn.info["statement_started"] = time.perf_counter()

    @event.listens_for(engine, "after_cursor_execute")
    def finished(conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool) -> None:
        timings.append((time.perf_counter() - conn.info["statement_started"], " ".join(statement.split())))

    with Session(engine) as session:
        started_at = time.perf_counter()
        planned = plan_digests(session, NOW, PlanOptions())
        if args.commit:
            session.commit()
        else:
            session.rollback()
        elapsed = time.perf_counter() - started_at
    outcome = "committed" if args.commit else "rolled back"
    print(f"planned {planned.deliveries:,} deliveries in {elapsed:.2f} s ({outcome})")
    for seconds, statement in sorted(timings, reverse=True)[: args.top]:
        print(f"{seconds:8.2f} s  {statement[:150]}")
    engine.dispose()


if __name__ == "__main__":
    main()
