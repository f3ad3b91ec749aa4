"""bench.planning_profile plans a generated list and prints its statements by time."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import text

from bench.data import with_schema
from bench.planning_profile import main
from digest.db import make_engine
from tests.conftest import PG_URL, require

pytestmark = pytest.mark.integration


def test_it_plans_the_list_and_names_the_insert(capsys: pytest.CaptureFixture[str]) -> None:
    require(PG_URL is not None, "PostgreSQL", "set DIGEST_TEST_DATABASE_URL")
    assert PG_URL
    schema = "planning_profile"
    try:
        # Which statement is slowest on 300 readers is the machine's business: every statement is
        # listed, slowest first, and the day's INSERT is among them; --top cuts the list.
        listed = {}
        for top in ("3", "1000"):
            argv = ["--subscribers", "300", "--database-url", PG_URL, "--schema", schema, "--commit", "--top", top]
            main(argv)
            out = capsys.readouterr().out
            assert "planned 300 deliveries" in out and "(committed)" in out
            timed = [line for line in out.splitlines() if re.match(r"^ +\d+\.\d\d s  [A-Z]", line)]
            seconds = [float(line.split()[0]) for line in timed]
            assert seconds == sorted(seconds, reverse=True), out
            listed[top] = len(timed)
        assert listed["3"] == 3 and listed["1000"] > 3 and any("INSERT INTO deliveries" in line for line in timed), out
        engine = make_engine(with_schema(PG_URL, schema))
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM deliveries")) == 300
        engine.dispose()
    finally:
        engine = make_engine(PG_URL)
        with engine.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        engine.dispose()
