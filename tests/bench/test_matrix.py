"""A tiny matrix of the benchmark (two list sizes, an empty and a 3-day ledger) through the real
pipeline, served app and sink: every point, every metric, everything delivered. No timing asserted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.__main__ import main
from bench.matrix import METRICS, comparisons, points
from tests.conftest import PG_URL, REDIS_URL, require

pytestmark = pytest.mark.integration


def test_points_cover_each_size_on_an_empty_ledger_then_each_age_once() -> None:
    assert [(p.subscribers, p.ledger_days) for p in points((100_000, 10_000), (365, 0, 90), 100_000)] == [
        (10_000, 0), (100_000, 0), (100_000, 90), (100_000, 365),
    ]  # fmt: skip


def test_comparisons_set_each_age_against_its_empty_ledger_and_skip_failed_points() -> None:
    def point(size: int, days: int, rate: float, planning: float, rss: float = 100.0) -> dict[str, object]:
        return {"subscribers": size, "ledger_days": days, "messages_per_second": rate, "planning_s": planning,
                "peak_rss_mb_max": rss}  # fmt: skip

    failed = {"subscribers": 1_000_000, "ledger_days": 0, "error": "RuntimeError: stalled", "all_delivered": False}
    got = comparisons([
        point(10_000, 0, 1000, 1.0), point(100_000, 0, 2000, 4.0), failed,
        point(100_000, 90, 1900, 4.4), point(100_000, 365, 1800, 5.0, 110.0),
    ])  # fmt: skip
    assert got["ledger_age"] == [
        {"subscribers": 100_000, "ledger_days": 90, "planning_ratio": 1.1, "messages_per_second_ratio": 0.95},
        {"subscribers": 100_000, "ledger_days": 365, "planning_ratio": 1.25, "messages_per_second_ratio": 0.9},
    ]
    assert got["list_size"] == [
        {"subscribers": 10_000, "against": 100_000, "messages_per_second_ratio": 0.5, "worker_rss_ratio": 1.0}
    ]


def test_tiny_matrix_reports_every_point_and_metric_with_everything_delivered(tmp_path: Path) -> None:
    require(
        bool(PG_URL and REDIS_URL), "PostgreSQL and Redis", "set DIGEST_TEST_DATABASE_URL and DIGEST_TEST_REDIS_URL"
    )
    assert PG_URL and REDIS_URL
    output = tmp_path / "matrix.json"
    status = main([
        "--matrix", "--matrix-sizes", "300,600", "--matrix-days", "0,3", "--matrix-age-size", "300",
        "--database-url", PG_URL, "--schema", "bench_matrix", "--redis-url", REDIS_URL, "--naive-sample", "10",
        "--workers", "1", "--concurrency", "2", "--chunk-size", "100", "--output", str(output),
    ])  # fmt: skip
    result = json.loads(output.read_text())
    assert status == 0
    got = [(p["subscribers"], p["ledger_days"]) for p in result["points"]]
    assert got == [(300, 0), (600, 0), (300, 3)]
    for point in result["points"]:
        assert set(METRICS) <= set(point), set(METRICS) - set(point)
        assert point["all_delivered"] is True
        # Unsubscribes during the send: all answered, recorded, and nobody mailed after leaving.
        leaving = point["unsubscribe"]
        assert leaving["requests"] == leaving["answered_200"] == leaving["unsubscribed"] == 10
        assert leaving["failures"] == [] and leaving["sent_after_unsubscribe"] == 0
        assert point["messages"] == point["sent_in_ledger"] == point["deliveries_planned"] - leaving["cancelled"]
        assert point["unsubscribe_p99_ms"] > 0
        # The resources of each component were measured.
        assert set(point["cpu_us_per_message"]) == {"workers", "postgres", "sink", "web"}
        assert point["cpu_us_per_message"]["workers"] > 0 and point["cpu_us_per_message"]["postgres"] > 0
        assert point["postgres_rss_mb_max"] > 0 and point["postgres_backends"] > 0
        assert point["database_bytes"] > 0 and point["wal_bytes"] > 0
        assert point["smtp_source"] is not None or point["sink"].startswith("aiosmtpd")
        assert point["naive"]["sample"] > 0
    aged = result["points"][2]
    assert aged["history"]["days"] == 3 and aged["history"]["deliveries"] >= 3 * 300
    assert result["comparisons"]["ledger_age"][0]["ledger_days"] == 3
    assert (tmp_path / result["plot"]).stat().st_size > 10_000
