"""Thin tasks: take ids, call one service, queue follow-ups after the commit."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import update

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.models import Issue, IssueStatus
from digest.delivery.service import DeliverReport, finish_issue_if_done
from digest.issues.planning import CampaignPlan
from digest.issues.service import IllegalTransition, get_campaign, resume_issue, start_due_campaigns, start_sending
from digest.schema import upgrade
from digest.selection.service import PlanResult, pending_chunks, plan_digests, stalled_issues
from digest.wiring import Services, build_services
from workers.app import celery_app

log = logging.getLogger(__name__)

MAX_RETRIES = 6
BACKOFF_BASE = 5.0  # seconds; doubled per retry, with jitter, capped well under the visibility timeout
BACKOFF_CAP = 600.0

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


@dataclass(frozen=True)
class SendRun:
    plan: PlanResult
    chunks: int
    campaigns: list[CampaignPlan] = field(default_factory=list)  # scheduled campaigns started now
    redispatched: list[int] = field(default_factory=list)  # sending issues whose open rows were queued again


def dispatch_issue(issue_id: int) -> int:
    """Queue the issue's unsent rows as chunk tasks (after the commit); returns the number queued.

    An issue with nothing left to queue is marked sent if no row is still open.
    """
    svc = services()
    with session_scope(svc.sessions) as session:
        batches = list(pending_chunks(session, issue_id, svc.settings.chunk_size))
        session.execute(
            update(Issue).where(Issue.id == issue_id).values(dispatched_at=svc.clock()).execution_options(synchronize_session=False)
        )
    for ids in batches:
        deliver_chunk.delay(ids)
    if not batches:
        finish_issue_if_done(svc.sessions, issue_id, svc.clock())
    return len(batches)


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
        chunks += dispatch_issue(issue_id)
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
            raise IllegalTransition(f"cannot send issue {issue_id}: it is {status} (a paused issue is resumed, not sent)")
    return plan, dispatch_issue(issue_id)


def resume_campaign(issue_id: int) -> int:
    """Resume a paused campaign and queue its open rows; returns the number of chunks queued."""
    svc = services()
    with session_scope(svc.sessions) as session:
        resume_issue(session, issue_id)
    return dispatch_issue(issue_id)


@celery_app.task(acks_late=True)
def dispatch_due() -> dict[str, int | None]:
    """Run by beat every minute: plan and queue whatever is due now."""
    run = send_due()
    return {
        "issue_id": run.plan.issue_id,
        "deliveries": run.plan.deliveries,
        "chunks": run.chunks,
        "campaigns": len(run.campaigns),
        "redispatched": len(run.redispatched),
    }


def ensure_schema(settings: Settings) -> None:
    svc = build_services(settings)
    try:
        upgrade(svc.engine)
    finally:
        svc.close()
