"""Retry countdowns stay bounded and under the broker's visibility timeout; a pool process builds its
services as it starts, and a failure there is logged, not fatal (the first task raises it again,
where Celery reports and retries it)."""

from __future__ import annotations

import logging

import pytest

from digest.config import Settings
from digest.queue import VISIBILITY_TIMEOUT
from workers import tasks


def test_backoff_is_jittered_exponential_and_bounded() -> None:
    for retries in range(12):
        ceiling = min(tasks.BACKOFF_CAP, tasks.BACKOFF_BASE * 2**retries)
        samples = [tasks.backoff(retries) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 100  # jittered, not a fixed delay
    assert tasks.BACKOFF_CAP < VISIBILITY_TIMEOUT
    assert tasks.deliver_chunk.max_retries >= 8  # a row gives up after 8 claims: the task retries as often


def test_a_starting_pool_process_builds_its_services(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tasks, "get_settings", lambda: settings)
    tasks.use_services(None)
    try:
        tasks._build_services()
        assert tasks._services is not None and tasks._services.settings is settings
    finally:
        tasks.use_services(None)


def test_a_failure_at_process_start_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("database URL is wrong")

    monkeypatch.setattr(tasks, "services", broken)
    with caplog.at_level(logging.ERROR, logger="workers.tasks"):
        tasks._build_services()
    assert "could not build services at worker start" in caplog.text and "database URL is wrong" in caplog.text
