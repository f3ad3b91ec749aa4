"""Thin tasks: each takes ids, calls one function of digest with this process's services, and reports.

The work itself is in digest (``digest.dispatch`` plans and queues, ``DeliveryService`` sends); a
task adds only what belongs to Celery: retries of transient failures with bounded, jittered
backoff. Task names are the ones ``digest.queue`` sends.
"""

from __future__ import annotations

import logging
import random
from typing import Any

from celery import Task, signals

from digest import dispatch
from digest.config import get_settings
from digest.delivery.service import MAX_ATTEMPTS, DeliverReport
from digest.delivery.transport import TransientError
from digest.ingest.feeds import poll_feeds as poll_all_feeds
from digest.ingest.fetching import FetchPolicy
from digest.queue import (
    DELIVER_CHUNK,
    DELIVER_WEBHOOKS,
    DISPATCH_DUE,
    POLL_FEEDS,
    SEND_CONFIRMATION,
    VISIBILITY_TIMEOUT,
)
from digest.wiring import Services, build_services
from workers.app import celery_app
from workers.stats import WorkerStats

log = logging.getLogger(__name__)

# A row is given up after MAX_ATTEMPTS claims; the task may retry at least that often, so that no
# row is left pending by a task that ran out of retries.
MAX_RETRIES = MAX_ATTEMPTS
BACKOFF_BASE = 5.0  # seconds; doubled per retry, with full jitter
BACKOFF_CAP = 600.0  # far below the broker's visibility timeout: no countdown outlives it
assert BACKOFF_CAP < VISIBILITY_TIMEOUT

_services: Services | None = None
_counter: WorkerStats | None = None


def use_services(services: Services | None) -> None:
    """Run this process's tasks with these services (tests); None: build them from the environment."""
    global _services
    if _services is not None and _services is not services:
        _services.close()
    _services = services


def services() -> Services:
    """This process's services, built on first use from the environment (one SMTP connection per
    worker process)."""
    global _services, _counter
    if _services is None:
        settings = get_settings()
        _services = build_services(settings)
        if settings.bench_stats_dir is not None:
            _counter = WorkerStats(_services.engine, _services.renderer, settings.bench_stats_dir)
    return _services


@signals.worker_process_init.connect
def _build_services(**_kwargs: Any) -> None:
    """Each pool process builds its services (engine, templates, transport) when it starts rather
    than in its first task, which otherwise sent its first message a few tenths of a second late.
    A configuration error is logged here and raised again by the first task."""
    try:
        services()
    except Exception:
        log.exception("could not build services at worker start; the first task will try again")


def backoff(retries: int) -> float:
    """Exponential backoff with full jitter, bounded."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**retries))


@celery_app.task(bind=True, acks_late=True, max_retries=MAX_RETRIES, name=DELIVER_CHUNK)
def deliver_chunk(self: Task, delivery_ids: list[int]) -> dict[str, int]:
    report: DeliverReport = services().delivery.deliver(delivery_ids)
    if not self.request.is_eager:
        # Handed back as new tasks, not retries: neither a lost database connection (at once) nor
        # throttling (after the wait every worker now observes) spends one of the chunk's tries.
        if report.requeue:
            deliver_chunk.apply_async(args=[report.requeue])
        if report.throttled:
            deliver_chunk.apply_async(args=[report.throttled], countdown=report.wait + backoff(0))
    if report.retry:
        if self.request.is_eager:
            # In-process runs have no broker to wait on; the rows stay pending for the next run.
            log.warning("%d deliveries hit transient errors; they stay pending", len(report.retry))
        else:
            raise self.retry(args=[report.retry], countdown=backoff(self.request.retries))
    if _counter is not None:
        _counter.write()
    return {"sent": report.sent, "failed": report.failed, "cancelled": report.cancelled, "skipped": report.skipped}


@celery_app.task(bind=True, acks_late=True, max_retries=MAX_RETRIES, name=SEND_CONFIRMATION)
def send_confirmation(self: Task, subscriber_id: int) -> bool:
    """The double opt-in email for one subscriber (queued by the sign-up page after its commit)."""
    try:
        return services().confirmations.send(subscriber_id)
    except TransientError as exc:
        if self.request.is_eager:
            log.warning("confirmation for subscriber %d not sent: %s", subscriber_id, exc)
            return False
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


@celery_app.task(bind=True, acks_late=True, max_retries=None, name=DELIVER_WEBHOOKS)
def deliver_webhooks(self: Task) -> dict[str, int]:
    """Send the due outgoing webhook events (queued after each commit that emitted some, and by beat).

    The sender that holds the lock comes back, by a Celery retry, when the next pending event is due
    for its next attempt; a task that finds another sender at work leaves the work to it. Attempts
    are bounded per event (DIGEST_WEBHOOK_MAX_ATTEMPTS), so the retries end with the events.
    """
    svc = services()
    report = svc.webhooks.deliver_due()
    if report.next_due is not None and not report.busy and not self.request.is_eager:
        wait = (report.next_due - svc.clock()).total_seconds()
        raise self.retry(countdown=min(BACKOFF_CAP, max(0.5, wait)))
    return {"delivered": report.delivered, "retrying": report.retrying, "failed": report.failed}


@celery_app.task(acks_late=True, name=DISPATCH_DUE)
def dispatch_due() -> dict[str, int | None]:
    """The planning task. Beat runs it every minute; ``digest send`` queues it when a broker is set."""
    run = dispatch.send_due(services())
    return {
        "issue_id": run.plan.issue_id,
        "deliveries": run.plan.deliveries,
        "chunks": run.chunks,
        "campaigns": len(run.campaigns),
        "redispatched": len(run.redispatched),
    }


@celery_app.task(acks_late=True, name=POLL_FEEDS)
def poll_feeds() -> dict[str, int]:
    """Run by beat every 15 minutes: poll every registered feed (conditional GET) and import new entries."""
    svc = services()
    results = poll_all_feeds(svc.sessions, svc.clock(), FetchPolicy.from_settings(svc.settings))
    return {
        "feeds": len(results),
        "not_modified": sum(r.not_modified for r in results),
        "failed": sum(r.error is not None for r in results),
        "imported": sum(r.imported for r in results),
    }
