"""A small run of the benchmark harness against the real PostgreSQL, Redis, celery workers and sink.

No timing is asserted: only that the result has every field and that every message reached the sink.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.report import FIELDS
from tests.conftest import PG_URL, REDIS_URL, require

pytestmark = pytest.mark.integration


def test_smoke_run_delivers_everything_and_reports_every_field(tmp_path: Path) -> None:
    require(
        bool(PG_URL and REDIS_URL), "PostgreSQL and Redis", "set DIGEST_TEST_DATABASE_URL and DIGEST_TEST_REDIS_URL"
    )
    assert PG_URL and REDIS_URL
    output = tmp_path / "smoke.json"
    status = main([
        "--smoke", "--database-url", PG_URL, "--schema", "bench_smoke", "--redis-url", REDIS_URL,
        "--workers", "1", "--concurrency", "2", "--chunk-size", "100", "--output", str(output),
    ])  # fmt: skip
    result = json.loads(output.read_text())
    assert status == 0
    assert set(FIELDS) <= set(result)
    assert result["subscribers"] == 500
    assert result["deliveries_planned"] > 0
    assert result["messages"] == result["deliveries_planned"] == result["sent_in_ledger"]
    assert result["all_delivered"] is True
    assert result["peak_rss_mb_per_process"] and result["db_statements_per_message"] > 0
    # Every variant sent was rendered by some process (the counts reach the result); sharing itself
    # is tested in tests/unit/rendering/test_shared_bodies.py.
    assert 0 < result["variants"] <= result["variant_renders"]
    assert result["naive"]["sample"] > 0 and result["naive"]["inliner"] == "premailer"
    assert result["naive_cached_stylesheet"]["sample"] > 0
