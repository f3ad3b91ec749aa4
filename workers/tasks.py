"""Thin tasks: take ids, call one service, queue follow-ups after the commit.

``dispatch_due`` is the planning task (beat runs it every minute; ``digest send`` queues it when a
broker is configured): it plans what is due in one committed transaction, then streams the ledger's
ids into ``deliver_chunk`` tasks of ``DIGEST_CHUNK_SIZE`` ids each, checkpointing on the issue as it
goes, and re-queues rows whose worker died (lease ran out). Tasks carry ids, never content.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.models import Issue, IssueStatus
from digest.delivery.service import MAX_ATTEMPTS, DeliverReport
from digest.delivery.transport import TransientError
from digest.ingest.feeds import poll_feeds as poll_all_feeds
from digest.schema import upgrade
from digest.selection.service import PlanResult, expired_page, pending_page, plan_digests
from digest.wiring import Services, build_services
from workers.app import VISIBILITY_TIMEOUT, celery_app

log = logging.getLogger(__name__)

# A row is given up after MAX_ATTEMPTS claims; the task may retry at least that often, so that no
# row is left pending by a task that ran out of retries.
MAX_RETRIES = MAX_ATTEMPTS
BACKOFF_BASE = 5.0  # seconds; doubled per retry, with full jitter
BACKOFF_CAP = 600.0  # far below the broker's visibility timeout: no countdown outlives it
assert BACKOFF_CAP < VISIBILITY_TIMEOUT

_settings: Settings | None = None
_services: Services | None = None


def use_settings(settings: Settings, services: Services | None = None) -> None:
    """Point the tasks at these settings (and optionally ready-built services, as tests do)."""
    global _settings, _services
    if _services is not None and _services is not services:
        _services.close()
    _settings, _services = settings, services


def services() -> Services:
    """This process's services, built on first use (one SMTP connection per worker process)."""
    global _services
    if _services is None:
        assert _settings is not None, "workers.app.configure() was not called"
        _services = build_services(_settings)
    return _services


def backoff(retries: int) -> float:
    """Exponential backoff with full jitter, bounded."""
    return random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**retries))


@celery_app.task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def deliver_chunk(self, delivery_ids: list[int]) -> dict[str, int]:  # type: ignore[no-untyped-def]
    report: DeliverReport = services().delivery.deliver(delivery_ids)
    if report.retry:
        if self.request.is_eager:
            # In-process runs have no broker to wait on; the rows stay pending for the next run.
            log.warning("%d deliveries hit transient errors; they stay pending", len(report.retry))
        else:
            raise self.retry(args=[report.retry], countdown=backoff(self.request.retries))
    return {"sent": report.sent, "failed": report.failed, "cancelled": report.cancelled, "skipped": report.skipped}


@celery_app.task(bind=True, acks_late=True, max_retries=MAX_RETRIES)
def send_confirmation(self, subscriber_id: int) -> bool:  # type: ignore[no-untyped-def]
    """The double opt-in email for one subscriber (queued by the sign-up page after its commit)."""
    try:
        return services().confirmations.send(subscriber_id)
    except TransientError as exc:
        if self.request.is_eager:
            log.warning("confirmation for subscriber %d not sent: %s", subscriber_id, exc)
            return False
        raise self.retry(exc=exc, countdown=backoff(self.request.retries)) from exc


@dataclass(frozen=True)
class SendRun:
    plan: PlanResult
    chunks: int


def _queue_pages(fetch: Callable[[Session, int], list[int]], *, after: int = 0, checkpoint: Callable[[list[int]], None] | None = None) -> int:
    """Queue chunk tasks page by page (keyset pagination); returns how many were queued."""
    svc = services()
    queued = 0
    while True:
        with session_scope(svc.sessions) as session:
            ids = fetch(session, after)
        if not ids:
            return queued
        deliver_chunk.delay(ids)
        queued += 1
        if checkpoint is not None:
            checkpoint(ids)
        after = ids[-1]


def dispatch_issue(issue_id: int) -> int:
    """Queue the issue's rows that were not queued yet, as chunk tasks; returns the number queued.

    Ids are read a page at a time (the list is never held in memory, and no transaction stays open);
    after each chunk is queued, the issue's ``dispatched_through`` is committed, so a redelivered
    planning task carries on where this one stopped. A crash between the two re-queues one chunk,
    which the claims make harmless. In-process (no broker) every open row is dispatched again:
    transient failures have no retry task there, and wait for the next run.
    """
    svc = services()
    size = svc.settings.chunk_size

    def checkpoint(ids: list[int]) -> None:
        with session_scope(svc.sessions) as session:
            session.execute(
                update(Issue).where(Issue.id == issue_id).values(dispatched_through=ids[-1]).execution_options(
                    synchronize_session=False
                )
            )

    with session_scope(svc.sessions) as session:
        after = 0 if svc.settings.eager else session.scalar(select(Issue.dispatched_through).where(Issue.id == issue_id)) or 0
    return _queue_pages(lambda s, a: pending_page(s, issue_id, size, after=a), after=after, checkpoint=checkpoint)


def requeue_expired(now: datetime) -> int:
    """Queue again the rows whose worker died mid-chunk: claimed, and the lease ran out."""
    size = services().settings.chunk_size
    return _queue_pages(lambda s, a: expired_page(s, now, size, after=a))


def send_due(now: datetime | None = None, *, include_new_subscribers: bool = False) -> SendRun:
    """Plan the cadence digests due at ``now`` (committed), then queue every open issue's chunks."""
    svc = services()
    now = now or svc.clock()
    with session_scope(svc.sessions) as session:
        plan = plan_digests(session, now, svc.plan_options(include_new_subscribers=include_new_subscribers))
    with session_scope(svc.sessions) as session:
        open_issues = list(session.scalars(select(Issue.id).where(Issue.status == IssueStatus.SENDING).order_by(Issue.id)))
    chunks = sum(dispatch_issue(issue_id) for issue_id in open_issues)
    chunks += requeue_expired(now)
    return SendRun(plan=plan, chunks=chunks)


@celery_app.task(acks_late=True)
def dispatch_due() -> dict[str, int | None]:
    """The planning task. Beat runs it every minute; ``digest send`` queues it when a broker is set.

    Safe to run again: planning never serves a period twice (a concurrent run fails on the ledger's
    unique keys), dispatch carries on from the checkpoint, and the claims make a duplicated chunk
    harmless.
    """
    run = send_due()
    return {"issue_id": run.plan.issue_id, "deliveries": run.plan.deliveries, "chunks": run.chunks}


@celery_app.task(acks_late=True)
def poll_feeds() -> dict[str, int]:
    """Run by beat every 15 minutes: poll every registered feed (conditional GET) and import new entries."""
    svc = services()
    results = poll_all_feeds(svc.sessions, svc.clock())
    return {
        "feeds": len(results),
        "not_modified": sum(r.not_modified for r in results),
        "failed": sum(r.error is not None for r in results),
        "imported": sum(r.imported for r in results),
    }


def ensure_schema(settings: Settings) -> None:
    svc = build_services(settings)
    try:
        upgrade(svc.engine)
    finally:
        svc.close()
