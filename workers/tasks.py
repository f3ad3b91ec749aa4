"""Thin tasks: take ids, call one service, queue follow-ups after the commit.

``dispatch_due`` is the planning task (beat runs it every minute; ``digest send`` queues it when a
broker is configured): it plans what is due in one committed transaction, then streams the ledger's
ids into ``deliver_chunk`` tasks of ``DIGEST_CHUNK_SIZE`` ids each, checkpointing on the issue as it
goes, and re-queues rows whose worker died (lease ran out). Tasks carry ids, never content.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select, update

from digest.config import Settings
from digest.db import session_scope
from digest.ledger.models import Issue, IssueStatus
from digest.delivery.service import MAX_ATTEMPTS, DeliverReport, finish_issue_if_done
from digest.delivery.transport import TransientError
from digest.ingest.feeds import poll_feeds as poll_all_feeds
from digest.issues.planning import CampaignPlan
from digest.issues.service import IllegalTransition, get_campaign, resume_issue, start_due_campaigns, start_sending
from digest.schema import upgrade
from digest.selection.service import PlanResult, pending_page, plan_digests, stalled_issues
from digest.wiring import Services, build_services
from workers.app import VISIBILITY_TIMEOUT, celery_app
from workers.stats import StatementCounter

log = logging.getLogger(__name__)

# A row is given up after MAX_ATTEMPTS claims; the task may retry at least that often, so that no
# row is left pending by a task that ran out of retries.
MAX_RETRIES = MAX_ATTEMPTS
# Chunks queued per ledger read and checkpoint commit: one commit per chunk made dispatch a third
# of a core for several seconds of a 100k send, beside the workers.
CHUNKS_PER_PAGE = 20
BACKOFF_BASE = 5.0  # seconds; doubled per retry, with full jitter
BACKOFF_CAP = 600.0  # far below the broker's visibility timeout: no countdown outlives it
assert BACKOFF_CAP < VISIBILITY_TIMEOUT

_settings: Settings | None = None
_services: Services | None = None
_counter: StatementCounter | None = None


def use_settings(settings: Settings, services: Services | None = None) -> None:
    """Point the tasks at these settings (and optionally ready-built services, as tests do)."""
    global _settings, _services
    if _services is not None and _services is not services:
        _services.close()
    _settings, _services = settings, services


def services() -> Services:
    """This process's services, built on first use (one SMTP connection per worker process)."""
    global _services, _counter
    if _services is None:
        assert _settings is not None, "workers.app.configure() was not called"
        _services = build_services(_settings)
        if _settings.bench_stats_dir is not None:
            _counter = StatementCounter(_services.engine, _settings.bench_stats_dir)
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
    if _counter is not None:
        _counter.write()
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
    campaigns: list[CampaignPlan] = field(default_factory=list)  # scheduled campaigns started now
    redispatched: list[int] = field(default_factory=list)  # sending issues whose open rows were queued again


def dispatch_issue(issue_id: int, *, restart: bool = False) -> int:
    """Queue the issue's unsent rows as chunk tasks (after the commit); returns the number queued.

    Ids are read a page of ``CHUNKS_PER_PAGE`` chunks at a time (keyset pagination: the list is
    never held in memory and no transaction stays open). After each page is queued,
    ``dispatched_through`` is committed, so a redelivered planning task carries on where this one
    stopped; ``restart`` queues every open row again (stalled issues, resumed campaigns).
    In-process (no broker) every open row is queued: transient failures have no retry task there
    and wait for the next run. A crash between queueing and the checkpoint queues up to a page of
    chunks twice, which taking each row once makes harmless. An issue with nothing left to queue is
    marked sent once no row is still open.
    """
    svc = services()
    size = svc.settings.chunk_size
    with session_scope(svc.sessions) as session:
        session.execute(
            update(Issue)
            .where(Issue.id == issue_id)
            .values(dispatched_at=svc.clock())
            .execution_options(synchronize_session=False)
        )
        checkpoint = session.scalar(select(Issue.dispatched_through).where(Issue.id == issue_id)) or 0
    after = 0 if restart or svc.settings.eager else checkpoint
    queued = 0
    while True:
        with session_scope(svc.sessions) as session:
            ids = pending_page(session, issue_id, size * CHUNKS_PER_PAGE, after=after)
        if not ids:
            break
        for start in range(0, len(ids), size):
            deliver_chunk.delay(ids[start : start + size])
            queued += 1
        after = ids[-1]
        with session_scope(svc.sessions) as session:
            session.execute(
                update(Issue)
                .where(Issue.id == issue_id)
                .values(dispatched_through=after)
                .execution_options(synchronize_session=False)
            )
    if not queued:
        finish_issue_if_done(svc.sessions, issue_id, svc.clock())
    return queued


def send_due(now: datetime | None = None, *, include_new_subscribers: bool = False) -> SendRun:
    """Plan the cadence digests due at ``now`` and start the campaigns scheduled before it (each
    committed), queue their chunks, and queue again the open rows of stalled sending issues."""
    svc = services()
    now = now or svc.clock()
    with session_scope(svc.sessions) as session:
        plan = plan_digests(session, now, svc.plan_options(include_new_subscribers=include_new_subscribers))
    chunks = dispatch_issue(plan.issue_id) if plan.issue_id else 0
    with session_scope(svc.sessions) as session:
        campaigns = start_due_campaigns(session, now, svc.plan_options())
    for campaign in campaigns:
        chunks += dispatch_issue(campaign.issue_id)
    with session_scope(svc.sessions) as session:
        stalled = stalled_issues(session, now, timedelta(seconds=svc.settings.lease_seconds))
    for issue_id in stalled:
        chunks += dispatch_issue(issue_id, restart=True)
    return SendRun(plan=plan, chunks=chunks, campaigns=campaigns, redispatched=stalled)


def send_issue(issue_id: int) -> tuple[CampaignPlan | None, int]:
    """``digest send --issue ID``: start a draft or scheduled campaign now, or queue again the open
    rows of one that is sending. Returns the plan (None if it was already sending) and chunks queued."""
    svc = services()
    now = svc.clock()
    with session_scope(svc.sessions) as session:
        status = get_campaign(session, issue_id).status
        if status in (IssueStatus.DRAFT, IssueStatus.SCHEDULED):
            plan: CampaignPlan | None = start_sending(session, issue_id, now, svc.plan_options())
        elif status == IssueStatus.SENDING:
            plan = None
        else:
            raise IllegalTransition(
                f"cannot send issue {issue_id}: it is {status} (a paused issue is resumed, not sent)"
            )
    return plan, dispatch_issue(issue_id, restart=plan is None)


def resume_campaign(issue_id: int) -> int:
    """Resume a paused campaign and queue its open rows; returns the number of chunks queued."""
    svc = services()
    with session_scope(svc.sessions) as session:
        resume_issue(session, issue_id)
    return dispatch_issue(issue_id, restart=True)


@celery_app.task(acks_late=True)
def dispatch_due() -> dict[str, int | None]:
    """The planning task. Beat runs it every minute; ``digest send`` queues it when a broker is set.

    Safe to run again: planning never serves a period twice (a concurrent run fails on the ledger's
    unique keys), dispatch carries on from the checkpoint, and the claims make a duplicated chunk
    harmless.
    """
    run = send_due()
    return {
        "issue_id": run.plan.issue_id,
        "deliveries": run.plan.deliveries,
        "chunks": run.chunks,
        "campaigns": len(run.campaigns),
        "redispatched": len(run.redispatched),
    }


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
