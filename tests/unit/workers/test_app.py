"""The worker app runs the tasks digest.queue sends, under the same names, and beat schedules them."""

from __future__ import annotations

import logging

import pytest

from digest import queue
from digest.config import Settings
from digest.wiring import Services
from workers import app, tasks


def test_every_task_the_producers_send_is_registered_under_its_name(settings: Settings) -> None:
    sent = {queue.DELIVER_CHUNK, queue.SEND_CONFIRMATION, queue.DISPATCH_DUE, queue.POLL_FEEDS, queue.DELIVER_WEBHOOKS}
    assert sent <= set(app.celery_app.tasks)
    schedule = {entry["task"] for entry in app.celery_app.conf.beat_schedule.values()}
    assert schedule == {queue.DISPATCH_DUE, queue.POLL_FEEDS, queue.DELIVER_WEBHOOKS}


def test_with_a_broker_tasks_are_queued_and_without_one_they_run_here(settings: Settings) -> None:
    try:
        app.configure(settings.model_copy(update={"broker_url": "redis://127.0.0.1:1/0"}))
        assert not app.celery_app.conf.task_always_eager
        assert app.celery_app.conf.broker_url == "redis://127.0.0.1:1/0"
        assert app.celery_app.conf.task_acks_late and app.celery_app.conf.worker_prefetch_multiplier == 1
    finally:
        app.configure(settings)
    assert app.celery_app.conf.task_always_eager


def test_in_process_tasks_log_no_broker_warning(services: Services, caplog: pytest.LogCaptureFixture) -> None:
    """Without a broker, tasks run eagerly, yet Celery takes a producer from kombu's pool for each;
    a broker URL without a host made kombu warn "No hostname was supplied" on every command."""
    app.configure(services.settings)
    with caplog.at_level(logging.WARNING):
        tasks.dispatch_due.delay()
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("kombu", "celery"))] == []
