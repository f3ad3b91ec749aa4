"""Pausing a sending campaign and resuming it: every recipient gets the message exactly once."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from datetime import timedelta

from sqlalchemy import select

from digest import dispatch
from digest.db import session_scope
from digest.delivery.service import DeliveryService
from digest.delivery.sink import SMTPSink
from digest.delivery.transport import SendResult, Transport
from digest.issues.service import pause_issue, start_sending
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.queue import InProcessQueue
from digest.rendering.message import OutgoingMessage
from digest.selection.service import pending_page
from digest.wiring import Services
from tests.conftest import Clock, on_postgresql_only
from tests.factories import add_campaign, add_subscriber, add_summaries, days_before, summary_record
from workers import tasks

RECIPIENTS = 10


def _seed(services: Services, clock: Clock) -> int:
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="pin", published_at=days_before(clock(), 1)))
        for n in range(RECIPIENTS):
            add_subscriber(s, f"r{n}@example.org", ["cardiology"], created_at=clock() - timedelta(days=2))
        return add_campaign(s, clock(), pinned=["pin"])


def _status(services: Services, issue_id: int) -> str:
    with session_scope(services.sessions) as s:
        return s.scalar(select(Issue.status).where(Issue.id == issue_id)) or ""


def _exactly_once(sink: SMTPSink) -> None:
    counts = Counter(r.rcpt_tos[0] for r in sink.received)
    assert counts == {f"r{n}@example.org": 1 for n in range(RECIPIENTS)}


def test_pause_between_chunks_then_resume(services: Services, clock: Clock, smtp_sink: SMTPSink) -> None:
    issue_id = _seed(services, clock)
    with session_scope(services.sessions) as s:
        start_sending(s, issue_id, clock(), services.plan_options())
        ids = pending_page(s, issue_id, 100)
    chunks = [ids[i : i + 4] for i in range(0, len(ids), 4)]
    assert [len(c) for c in chunks] == [4, 4, 2]

    tasks.deliver_chunk(chunks[0])  # the first chunk goes out
    with session_scope(services.sessions) as s:
        pause_issue(s, issue_id)
    for chunk in chunks:  # chunk tasks already queued, and redelivered ones, send nothing while paused
        tasks.deliver_chunk(chunk)
    tasks.dispatch_due()
    clock.advance(minutes=30)  # past the lease: still nothing while paused
    tasks.dispatch_due()
    assert len(smtp_sink.received) == 4 and _status(services, issue_id) == IssueStatus.PAUSED

    dispatch.resume_campaign(services, issue_id)  # every row still pending is queued again
    _exactly_once(smtp_sink)
    assert _status(services, issue_id) == IssueStatus.SENT
    for chunk in chunks:  # late redeliveries after the end
        tasks.deliver_chunk(chunk)
    tasks.dispatch_due()
    _exactly_once(smtp_sink)


class _PausingTransport:
    """Wraps the SMTP transport and pauses the issue (in its own transaction) after the third message."""

    def __init__(self, inner: Transport, services: Services, issue_id: int):
        self.inner, self.services, self.issue_id, self.sent = inner, services, issue_id, 0
        self.name, self.batch_size, self.wants_raw = inner.name, inner.batch_size, inner.wants_raw

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results = self.inner.send(messages)
        self.sent += len(messages)
        if self.sent == 3:
            with session_scope(self.services.sessions) as s:
                pause_issue(s, self.issue_id)
        return results

    def close(self) -> None:
        self.inner.close()


# SQLite admits one writer at a time: a pause waits for the batch (the between-batch case is above)
@on_postgresql_only
def test_pause_while_a_chunk_is_being_sent(
    services: Services, clock: Clock, smtp_sink: SMTPSink, database_url: str
) -> None:
    issue_id = _seed(services, clock)
    pausing = _PausingTransport(services.transport, services, issue_id)
    services.delivery = DeliveryService(services.sessions, services.composer, pausing, clock=clock)
    services.queue = InProcessQueue(services.delivery, services.confirmations, services.webhooks)
    dispatch.send_issue(services, issue_id)  # one chunk of ten; the pause lands after the third message
    assert len(smtp_sink.received) == 3 and _status(services, issue_id) == IssueStatus.PAUSED
    with session_scope(services.sessions) as s:
        statuses = Counter(s.scalars(select(Delivery.status).where(Delivery.issue_id == issue_id)))
    assert statuses == {DeliveryStatus.SENT: 3, DeliveryStatus.PENDING: 7}  # released, not stuck in a lease

    dispatch.resume_campaign(services, issue_id)
    _exactly_once(smtp_sink)
    assert _status(services, issue_id) == IssueStatus.SENT
