"""Logging set-up, the send metrics (multiprocess files added up at scrape time) and the queue depth."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from digest.config import Settings
from digest.delivery.transport import Failure, SendResult
from digest.observability import QueueDepthCollector, exposition, send_metrics, setup_logging


def sample(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus text exposition (0 when absent)."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


@pytest.fixture
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:], root.level = handlers, level


def test_json_logs_one_object_per_line_with_extra_fields(
    restore_logging: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging(Settings(var_dir=tmp_path, log_format="json", log_level="info"))
    setup_logging(Settings(var_dir=tmp_path, log_format="json", log_level="info"))  # again: still one handler
    logging.getLogger("digest.test").info("sent %d messages", 3, extra={"issue_id": 7})
    logging.getLogger("digest.test").debug("not at INFO")
    try:
        raise ValueError("boom")
    except ValueError:
        logging.getLogger("digest.test").exception("it failed")
    lines = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [line["message"] for line in lines] == ["sent 3 messages", "it failed"]
    first = lines[0]
    assert first["level"] == "INFO" and first["logger"] == "digest.test" and first["issue_id"] == 7
    assert first["time"].endswith("+00:00")
    assert "ValueError: boom" in lines[1]["exception"]


def test_text_logs_and_level(restore_logging: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    setup_logging(Settings(var_dir=tmp_path, log_level="WARNING"))
    logging.getLogger("digest.test").info("hidden")
    logging.getLogger("digest.test").warning("shown")
    err = capsys.readouterr().err
    assert "WARNING digest.test: shown" in err and "hidden" not in err


def test_unknown_log_level_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="DIGEST_LOG_LEVEL must be"):
        Settings(var_dir=tmp_path, log_level="chatty")


def test_send_metrics_count_per_transport_and_failure_kind(metrics_dir: Path) -> None:
    metrics = send_metrics(metrics_dir)
    assert send_metrics(metrics_dir) is metrics  # one set per process
    metrics.record(
        "unit-transport",
        0.2,
        [
            SendResult.ok(1, "p-1"),
            SendResult.ok(2, "p-2"),
            SendResult.failed(3, "550 no such user", Failure.RECIPIENT),
            SendResult.failed(4, "554 rejected", Failure.MESSAGE),
            SendResult.failed(5, "451 try later", Failure.TEMPORARY),
            SendResult.failed(6, "421 slow down", Failure.THROTTLED),
            SendResult.failed(7, "535 authentication failed", Failure.CONNECTION),
        ],
    )
    text = exposition(metrics_dir, None).decode()
    assert sample(text, "digest_messages_sent_total", transport="unit-transport") == 2
    for kind in ("bounce", "permanent", "transient", "throttled", "connection"):
        assert sample(text, "digest_messages_failed_total", transport="unit-transport", kind=kind) == 1
    assert sample(text, "digest_send_seconds_count", transport="unit-transport") == 1
    assert sample(text, "digest_send_seconds_bucket", transport="unit-transport", le="0.25") == 1
    assert "digest_queue_depth" not in text  # no broker configured


def test_queue_depth_is_read_from_redis_at_scrape_time(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    queue = "digest-test-queue-depth"
    client.delete(queue, queue + "\x06\x163")
    try:
        client.rpush(queue, "a", "b", "c")
        client.rpush(queue + "\x06\x163", "d")  # kombu's key for a priority step
        (family,) = QueueDepthCollector(redis_url, queues=[queue]).collect()
        assert [(s.name, s.labels, s.value) for s in family.samples] == [("digest_queue_depth", {"queue": queue}, 4)]
    finally:
        client.delete(queue, queue + "\x06\x163")
        client.close()


def test_an_unreachable_broker_leaves_the_queue_depth_out(metrics_dir: Path) -> None:
    text = exposition(metrics_dir, "redis://127.0.0.1:1/0").decode()
    assert "digest_queue_depth" not in text
