"""Thin tasks: take ids, call one service, queue follow-ups after the commit."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import datetime

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.service import DeliverReport
from digest.schema import upgrade
from digest.selection.service import PlanResult, pending_chunks, plan_digests
from digest.wiring import Services, build_services
from workers.app import celery_app
from workers.stats import StatementCounter

log = logging.getLogger(__name__)

MAX_RETRIES = 6
BACKOFF_BASE = 5.0  # seconds; doubled per retry, with jitter, capped well under the visibility timeout
BACKOFF_CAP = 600.0

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


@dataclass(frozen=True)
class SendRun:
    plan: PlanResult
    chunks: int


def dispatch_issue(issue_id: int) -> int:
    """Queue the issue's unsent rows as chunk tasks; returns the number of chunks queued."""
    svc = services()
    chunks = 0
    with session_scope(svc.sessions) as session:
        batches = list(pending_chunks(session, issue_id, svc.settings.chunk_size))
    for ids in batches:
        deliver_chunk.delay(ids)
        chunks += 1
    return chunks


def send_due(now: datetime | None = None, *, include_new_subscribers: bool = False) -> SendRun:
    """Plan the cadence digests due at ``now`` (committed), then queue their chunks."""
    svc = services()
    now = now or svc.clock()
    with session_scope(svc.sessions) as session:
        plan = plan_digests(session, now, svc.plan_options(include_new_subscribers=include_new_subscribers))
    chunks = dispatch_issue(plan.issue_id) if plan.issue_id else 0
    return SendRun(plan=plan, chunks=chunks)


@celery_app.task(acks_late=True)
def dispatch_due() -> dict[str, int | None]:
    """Run by beat every minute: plan and queue whatever is due now."""
    run = send_due()
    return {"issue_id": run.plan.issue_id, "deliveries": run.plan.deliveries, "chunks": run.chunks}


def ensure_schema(settings: Settings) -> None:
    svc = build_services(settings)
    try:
        upgrade(svc.engine)
    finally:
        svc.close()
