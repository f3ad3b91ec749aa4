"""The Celery app of the worker and beat processes, configured from Settings.

Only the worker side lives here: the web app, the CLI and dispatch hand work over through
``Services.queue`` (digest/queue.py), which sends tasks by name with the same serialisation and
broker options. Settings that fit the ledger protocol: late acks, reject on worker lost, prefetch 1,
and a visibility timeout longer than any task. Send times are polled by ``dispatch_due`` every
minute (DIGEST_DISPATCH_SECONDS), never queued as ETA/countdown tasks; summary feeds are polled by
``poll_feeds`` every 15 minutes.
"""

from __future__ import annotations

from typing import Any

from celery import Celery, signals

from digest.config import Settings, get_settings
from digest.observability import setup_logging
from digest.queue import DELIVER_WEBHOOKS, DISPATCH_DUE, POLL_FEEDS, celery_config

POLL_FEEDS_EVERY = 15 * 60.0
WEBHOOKS_EVERY = 60.0

celery_app = Celery("digest", include=["workers.tasks"])


def configure(settings: Settings) -> Celery:
    """Apply Settings to the app (at import for worker and beat processes; tests call it again).

    Without a broker, a task called through ``.delay`` runs at once in the calling process.
    """
    broker_url = celery_config(settings)["broker_url"]
    if celery_app.conf.broker_url not in (None, broker_url):
        _forget_connections()
    celery_app.conf.update(
        celery_config(settings),
        task_always_eager=settings.eager,
        task_eager_propagates=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        beat_schedule={
            "dispatch-due": {"task": DISPATCH_DUE, "schedule": settings.dispatch_seconds},
            "poll-feeds": {"task": POLL_FEEDS, "schedule": POLL_FEEDS_EVERY},
            # A safety net: each commit that emits webhook events queues the sender itself.
            "deliver-webhooks": {"task": DELIVER_WEBHOOKS, "schedule": WEBHOOKS_EVERY},
        },
    )
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


configure(get_settings())
