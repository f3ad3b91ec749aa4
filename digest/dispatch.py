"""From planning to tasks: plan what is due, then hand the ledger's open rows over in chunks.

``send_due`` is what the beat schedule runs every minute (through the ``dispatch_due`` task) and what
``digest send`` runs in-process: it reviews the summary versions ingest stored (opening corrections,
starting the safety alerts of records flagged urgent), plans the corrections approved since the last
run (notices of their own, or blocks folded into the next digests), plans the cadence digests due now
in one committed transaction,
starts the campaigns scheduled before now, streams each issue's pending ids into chunks of
``DIGEST_CHUNK_SIZE`` handed to ``services.queue``, checkpointing on the issue as it goes, and
queues again the rows of issues whose worker died (lease ran out), and carries on a dispatch that
stopped half-way (its database connection or the broker lost) from its checkpoint one tick later.
Chunks carry ids, never content.
While the transport circuit is open (digest/delivery/circuit.py) it first probes the transport, when
a probe is due, and resumes the issues the circuit paused once the probe succeeds.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError

from digest.corrections.review import review_versions
from digest.corrections.service import PlannedCorrection, plan_approved
from digest.db import session_scope
from digest.delivery.service import finish_issue_if_done
from digest.delivery.transport import TransportError
from digest.errors import Term
from digest.i18n import N_
from digest.issues.planning import CampaignPlan
from digest.issues.runs import digests_paused
from digest.issues.service import IllegalTransition, get_campaign, resume_issue, start_due_campaigns, start_sending
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueKind, IssueStatus
from digest.selection.service import (
    PlanResult,
    interrupted_dispatches,
    pending_page,
    plan_digests,
    stalled_issues,
)
from digest.wiring import Services

log = logging.getLogger(__name__)

# Chunks queued per ledger read and checkpoint commit: one commit per chunk made dispatch a third
# of a core for several seconds of a 100k send, beside the workers.
CHUNKS_PER_PAGE = 20


@dataclass(frozen=True)
class SendRun:
    plan: PlanResult
    chunks: int
    campaigns: list[CampaignPlan] = field(default_factory=list)  # scheduled campaigns started now
    redispatched: list[int] = field(default_factory=list)  # sending issues whose open rows were queued again
    resumed: list[int] = field(default_factory=list)  # issues the transport circuit had paused, resumed now
    digests_paused: bool = False  # the automatic digests are paused: no period was planned
    corrections: list[PlannedCorrection] = field(default_factory=list)  # approved corrections planned now
    alerts: list[int] = field(default_factory=list)  # safety alert issues started for records flagged urgent


def dispatch_issue(services: Services, issue_id: int, *, restart: bool = False) -> int:
    """Queue the issue's unsent rows as chunks (after the commit); returns the number queued.

    Ids are read a page of ``CHUNKS_PER_PAGE`` chunks at a time (keyset pagination: the list is
    never held in memory and no transaction stays open). After each page is queued,
    ``dispatched_through`` is committed, so a redelivered planning task carries on where this one
    stopped; ``restart`` queues every open row again (stalled issues, resumed campaigns).
    In-process (no broker) every open row is queued: transient failures have no retry task there
    and wait for the next run. A crash between queueing and the checkpoint queues up to a page of
    chunks twice, which taking each row once makes harmless. An issue with nothing left to queue is
    marked sent once no row is still open.
    """
    size = services.settings.chunk_size
    with session_scope(services.sessions) as session:
        session.execute(
            update(Issue)
            .where(Issue.id == issue_id)
            .values(dispatched_at=services.clock())
            .execution_options(synchronize_session=False)
        )
        checkpoint = session.scalar(select(Issue.dispatched_through).where(Issue.id == issue_id)) or 0
    after = 0 if restart or services.settings.eager else checkpoint
    queued = 0
    while True:
        with session_scope(services.sessions) as session:
            ids = pending_page(session, issue_id, size * CHUNKS_PER_PAGE, after=after)
        if not ids:
            break
        for start in range(0, len(ids), size):
            services.queue.deliver_chunk(ids[start : start + size])
            queued += 1
        after = ids[-1]
        with session_scope(services.sessions) as session:
            session.execute(
                update(Issue)
                .where(Issue.id == issue_id)
                .values(dispatched_through=after)
                .execution_options(synchronize_session=False)
            )
    if not queued:
        finish_issue_if_done(services.sessions, issue_id, services.clock())
    return queued


def send_due(services: Services, now: datetime | None = None, *, include_new_subscribers: bool = False) -> SendRun:
    """Plan the cadence digests due at ``now`` and start the campaigns scheduled before it (each
    committed), queue their chunks, and queue again the open rows of stalled sending issues.

    Safe to run again: planning never serves a period twice (a concurrent run fails on the ledger's
    unique keys), dispatch carries on from the checkpoint, and the claims make a duplicated chunk
    harmless. While an editor has paused the automatic digests (``digest.issues.runs``), no period
    is planned and the open rows of digest issues are not queued again; campaigns go on.
    """
    now = now or services.clock()
    resumed = probe_transport(services)
    chunks = sum(dispatch_issue(services, issue_id, restart=True) for issue_id in resumed)
    # What ingest stored since the last cycle: corrections to approve, safety alerts to send now.
    with session_scope(services.sessions) as session:
        review = review_versions(session, now)
    chunks += sum(dispatch_issue(services, issue_id) for issue_id in review.alerts)
    # Approved corrections next: their notices go out in this cycle, and folded ones reach the
    # digests planned just below.
    corrections, queued = send_corrections(services, now)
    chunks += queued
    try:
        with session_scope(services.sessions) as session:
            paused = digests_paused(session)
            if paused:
                plan = PlanResult(issue_id=None, deliveries=0, items=0)
            else:
                options = services.plan_options(include_new_subscribers=include_new_subscribers)
                plan = plan_digests(session, now, options)
    except IntegrityError:
        # Another run planned the same period at the same moment and committed first (the ledger's
        # unique keys refused this one's rows): its digests are planned; carry on with the rest.
        log.info("another dispatch planned the digests due at %s; this run plans nothing", now)
        plan = PlanResult(issue_id=None, deliveries=0, items=0)
    chunks += dispatch_issue(services, plan.issue_id) if plan.issue_id else 0
    with session_scope(services.sessions) as session:
        campaigns = start_due_campaigns(session, now, services.plan_options())
    for campaign in campaigns:
        chunks += dispatch_issue(services, campaign.issue_id)
    with session_scope(services.sessions) as session:
        stalled = stalled_issues(session, now, timedelta(seconds=services.settings.lease_seconds))
        tick_ago = now - timedelta(seconds=services.settings.dispatch_seconds)
        interrupted = [i for i in interrupted_dispatches(session, tick_ago) if i not in stalled]
        if paused:
            campaigns_only = select(Issue.id).where(Issue.kind == IssueKind.CAMPAIGN)
            stalled = list(session.scalars(campaigns_only.where(Issue.id.in_(stalled))))
            interrupted = list(session.scalars(campaigns_only.where(Issue.id.in_(interrupted))))
    for issue_id in stalled:
        chunks += dispatch_issue(services, issue_id, restart=True)
    for issue_id in interrupted:
        chunks += dispatch_issue(services, issue_id)  # from its checkpoint
    return SendRun(
        plan=plan,
        chunks=chunks,
        campaigns=campaigns,
        redispatched=[*stalled, *interrupted],
        resumed=resumed,
        digests_paused=paused,
        corrections=corrections,
        alerts=review.alerts,
    )


def probe_transport(services: Services) -> list[int]:
    """While the transport circuit is open and a probe is due (one caller claims it), try the
    transport once; on success close the circuit and return the issues it resumed."""
    circuit = services.delivery.circuit
    if not circuit.claim_probe():
        return []
    try:
        services.transport.probe()
    except TransportError as exc:
        circuit.probe_failed(str(exc))
        return []
    return circuit.close()


def send_corrections(services: Services, now: datetime | None = None) -> tuple[list[PlannedCorrection], int]:
    """Plan the approved corrections (committed) and queue their notices; returns them and the chunks queued."""
    with session_scope(services.sessions) as session:
        corrections = plan_approved(session, now or services.clock())
    return corrections, sum(dispatch_issue(services, c.issue_id) for c in corrections if c.issue_id)


def send_issue(services: Services, issue_id: int) -> tuple[CampaignPlan | None, int]:
    """``digest send --issue ID``: start a draft or scheduled campaign now, or queue again the open
    rows of one that is sending. Returns the plan (None if it was already sending) and chunks queued."""
    now = services.clock()
    with session_scope(services.sessions) as session:
        status = get_campaign(session, issue_id).status
        if status in (IssueStatus.DRAFT, IssueStatus.SCHEDULED):
            plan: CampaignPlan | None = start_sending(session, issue_id, now, services.plan_options())
        elif status == IssueStatus.SENDING:
            plan = None
        else:
            raise IllegalTransition(
                N_("cannot send issue %(id)s: it is %(status)s (a paused issue is resumed, not sent)"),
                id=issue_id,
                status=Term(status),
            )
    return plan, dispatch_issue(services, issue_id, restart=plan is None)


def resume_campaign(services: Services, issue_id: int) -> int:
    """Resume a paused campaign and queue its open rows; returns the number of chunks queued.

    An editor resuming an issue the transport circuit paused says "try now": the circuit closes and
    the other issues it paused resume with it (the next failure opens it again)."""
    with session_scope(services.sessions) as session:
        resume_issue(session, issue_id)
    others = [i for i in services.delivery.circuit.close() if i != issue_id]
    return sum(dispatch_issue(services, i, restart=True) for i in (issue_id, *others))


@dataclass(frozen=True)
class IssueOutcome:
    """Where an issue stands after a send: what ``digest send`` reports."""

    issue_id: int
    status: str
    counts: dict[str, int]  # deliveries by status
    deferred: list[tuple[str, int]]  # pending rows by the error that sent them back (most first)
    paused_by: str | None
    pause_reason: str | None

    @property
    def pending(self) -> int:
        return self.counts.get(DeliveryStatus.PENDING, 0)


def outcomes(services: Services, issue_ids: list[int]) -> list[IssueOutcome]:
    """``issue_ids`` (in this order), with every other issue that still has rows to send."""
    with session_scope(services.sessions) as session:
        still_open = session.scalars(
            select(Issue.id)
            .where(
                Issue.status.in_((IssueStatus.SENDING, IssueStatus.PAUSED)),
                Issue.id.in_(select(Delivery.issue_id).where(Delivery.status == DeliveryStatus.PENDING)),
            )
            .order_by(Issue.id)
        )
        wanted = list(dict.fromkeys([*issue_ids, *still_open]))
        out = []
        for issue in session.scalars(select(Issue).where(Issue.id.in_(wanted))):
            counts = dict(
                session.execute(
                    select(Delivery.status, func.count()).where(Delivery.issue_id == issue.id).group_by(Delivery.status)
                ).all()
            )
            deferred = session.execute(
                select(func.coalesce(Delivery.error, "not tried yet"), func.count())
                .where(Delivery.issue_id == issue.id, Delivery.status == DeliveryStatus.PENDING)
                .group_by(Delivery.error)
                .order_by(func.count().desc())
            ).all()
            out.append(
                IssueOutcome(
                    issue.id,
                    issue.status,
                    counts,
                    [(reason, n) for reason, n in deferred],
                    issue.paused_by,
                    issue.pause_reason,
                )
            )
    return sorted(out, key=lambda o: wanted.index(o.issue_id))
