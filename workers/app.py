"""The Celery app, configured from Settings.

With ``DIGEST_BROKER_URL`` unset, tasks run eagerly in the calling process through exactly the same
task code; with it set, a real worker does the work. Settings that fit the ledger protocol: late
acks, reject on worker lost, prefetch 1, and a visibility timeout longer than any task. Send times
are polled by ``dispatch_due`` every minute (DIGEST_DISPATCH_SECONDS), never queued as ETA/countdown tasks; summary feeds are
polled by ``poll_feeds`` every 15 minutes.
"""

from __future__ import annotations

import logging
from typing import Any

from celery import Celery, signals

from digest.config import Settings, get_settings
from digest.observability import setup_logging

log = logging.getLogger(__name__)

VISIBILITY_TIMEOUT = 3600  # seconds; longer than any task (a chunk takes seconds) and any retry countdown
POLL_FEEDS_EVERY = 15 * 60.0

celery_app = Celery("digest", include=["workers.tasks"])


def configure(settings: Settings) -> Celery:
    """Apply Settings to the app (called at import for worker processes, and by the CLI and tests)."""
    # Eager tasks still take a producer from the pool: a URL with a host keeps kombu from warning
    # "No hostname was supplied" on every command that runs tasks in-process.
    broker_url = settings.broker_url or "memory://localhost/"
    if celery_app.conf.broker_url not in (None, broker_url):
        _forget_connections()
    celery_app.conf.update(
        broker_url=broker_url,
        task_always_eager=settings.eager,
        task_eager_propagates=True,
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True,
        task_serializer="json",
        accept_content=["json"],
        worker_hijack_root_logger=False,
        beat_schedule={
            "dispatch-due": {"task": "workers.tasks.dispatch_due", "schedule": settings.dispatch_seconds},
            "poll-feeds": {"task": "workers.tasks.poll_feeds", "schedule": POLL_FEEDS_EVERY},
        },
    )
    from workers import tasks

    tasks.use_settings(settings)
    return celery_app


def _forget_connections() -> None:
    """Drop the producer pools made for the previous broker URL, which Celery would otherwise keep
    using (it has no public call for this; these are the attributes its own after-fork hook resets).
    They are not closed: kombu shares them process-wide by URL, and they are reused if it comes back."""
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@signals.setup_logging.connect
def _setup_logging(**_kwargs: Any) -> None:
    """Worker and beat processes log like the rest of digest (DIGEST_LOG_FORMAT, DIGEST_LOG_LEVEL)."""
    setup_logging(get_settings())


@signals.worker_process_init.connect
def _build_services(**_kwargs: Any) -> None:
    """Each pool process builds its services (engine, templates, transport) when it starts rather
    than in its first task, which otherwise sent its first message a few tenths of a second late.
    A configuration error is logged here and raised again by the first task."""
    from workers import tasks

    try:
        tasks.services()
    except Exception:
        log.exception("could not build services at worker start; the first task will try again")


configure(get_settings())
