"""A pool process builds its services as it starts; a failure there is logged, not fatal (the first
task raises it again, where Celery reports and retries it)."""

from __future__ import annotations

import logging

import pytest

from digest.config import Settings
from workers import app, tasks


def test_a_starting_pool_process_builds_its_services(settings: Settings) -> None:
    tasks.use_settings(settings)
    try:
        app._build_services()
        assert tasks._services is not None and tasks._services.settings is settings
    finally:
        tasks.use_settings(settings)


def test_a_failure_at_process_start_is_logged(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    def broken() -> None:
        raise RuntimeError("database URL is wrong")

    monkeypatch.setattr(tasks, "services", broken)
    with caplog.at_level(logging.ERROR, logger="workers.app"):
        app._build_services()
    assert "could not build services at worker start" in caplog.text and "database URL is wrong" in caplog.text


def test_in_process_tasks_log_no_broker_warning(settings: Settings, caplog: pytest.LogCaptureFixture) -> None:
    """Without a broker, tasks run eagerly, yet Celery takes a producer from kombu's pool for each;
    a broker URL without a host made kombu warn "No hostname was supplied" on every command."""
    app.configure(settings)
    with caplog.at_level(logging.WARNING):
        tasks.dispatch_due.delay()
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("kombu", "celery"))] == []
