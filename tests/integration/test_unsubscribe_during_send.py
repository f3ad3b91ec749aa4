"""An unsubscribe that commits while a send is running: nothing reaches the subscriber afterwards.

The SMTP server is deliberately slow (each message takes a while to be accepted). From another
thread, through the HTTP endpoint, we unsubscribe (a) the subscriber whose message is being
transmitted at that moment and (b) one whose message has not gone out yet, record when each
unsubscribe committed, and compare with when the server accepted each message.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import pytest
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient
from sqlalchemy import event, select
from sqlalchemy.orm import Session as OrmSession

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ledger.models import Delivery, DeliveryStatus
from digest.selection.service import pending_page, plan_digests
from digest.subscribers.models import Subscriber
from digest.subscribers.tokens import Purpose
from digest.web.app import create_app
from digest.wiring import Services, build_services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record

SUBSCRIBERS = 10
DELAY = 0.15  # seconds the server takes to accept each message


class SlowHandler:
    """Accepts each message after DELAY; records when it accepted it, and signals when one starts."""

    def __init__(self) -> None:
        self.accepted: list[tuple[str, float]] = []
        self.started: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def started_event(self, rcpt: str) -> threading.Event:
        with self._lock:
            return self.started.setdefault(rcpt, threading.Event())

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        [rcpt] = envelope.rcpt_tos
        self.started_event(rcpt).set()
        await asyncio.sleep(DELAY)
        with self._lock:
            self.accepted.append((rcpt, time.monotonic()))
        return "250 2.0.0 accepted"


@pytest.fixture
def slow_server() -> Iterator[tuple[SMTPSink, SlowHandler]]:
    handler = SlowHandler()
    with SMTPSink(handler=handler) as sink:
        yield sink, handler


@pytest.fixture
def slow_services(settings: Settings, clock: Clock, slow_server: tuple[SMTPSink, SlowHandler]) -> Iterator[Services]:
    svc = build_services(settings.model_copy(update={"smtp_url": slow_server[0].url}), clock=clock)
    yield svc
    svc.close()


def test_nothing_is_sent_after_the_unsubscribe_commits(
    slow_services: Services, slow_server: tuple[SMTPSink, SlowHandler], clock: Clock
) -> None:
    services, (_, handler) = slow_services, slow_server
    emails = [f"reader{n:02d}@example.org" for n in range(SUBSCRIBERS)]
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="c1", specialties=["cardiology"], published_at=days_before(clock(), 1)))
        ids = {e: add_subscriber(s, e, ["cardiology"], created_at=clock() - timedelta(days=3)).id for e in emails}
        plan = plan_digests(s, clock(), services.plan_options())
        assert plan.deliveries == SUBSCRIBERS and plan.issue_id is not None
        chunk = pending_page(s, plan.issue_id, 100)
        # The send goes in delivery id order: pick the 4th recipient and the last one.
        order = s.scalars(
            select(Subscriber.email).join(Delivery, Delivery.subscriber_id == Subscriber.id).order_by(Delivery.id)
        ).all()
    in_flight, later = order[3], order[-1]

    # Every commit not made by the sending thread is an unsubscribe's (the app runs its handlers
    # in a thread pool); the two unsubscribes run one after the other.
    sender = threading.get_ident()
    commit_times: list[float] = []

    @event.listens_for(services.sessions, "after_commit")
    def _record_commit(session: OrmSession) -> None:
        if threading.get_ident() != sender and not session.in_nested_transaction():  # savepoints fire it too
            commit_times.append(time.monotonic())

    def unsubscriber() -> None:
        with TestClient(create_app(services)) as client:
            assert handler.started_event(in_flight).wait(30), "the send never reached the in-flight subscriber"
            for email in (in_flight, later):
                token = services.tokens.make(Purpose.UNSUBSCRIBE, ids[email])
                response = client.post(
                    f"/unsubscribe/{token}", data={"List-Unsubscribe": "One-Click"}, follow_redirects=False
                )
                assert response.status_code == 200 and "location" not in response.headers

    thread = threading.Thread(target=unsubscriber, name="unsubscriber")
    thread.start()
    report = services.delivery.deliver(chunk)  # the send path, in this thread, as a worker runs it
    thread.join(30)
    assert not thread.is_alive()

    assert len(commit_times) == 2
    for email, commit_time in zip((in_flight, later), commit_times, strict=True):
        after = [t for rcpt, t in handler.accepted if rcpt == email and t >= commit_time]
        assert after == [], f"{email} received a message after their unsubscribe committed"
    received = [rcpt for rcpt, _ in handler.accepted]
    assert received.count(in_flight) == 1  # in flight when they clicked: it had already left
    with session_scope(services.sessions) as s:
        status = dict(
            s.execute(
                select(Subscriber.email, Delivery.status).join(Delivery, Delivery.subscriber_id == Subscriber.id)
            ).all()
        )
    assert status[in_flight] == DeliveryStatus.SENT
    assert report.sent == len(received)
    if services.engine.dialect.name == "postgresql":
        # Row locks: the unsubscribe waits for the one message in flight, then commits at once,
        # so the later subscriber's row is cancelled and nothing is sent to them.
        assert later not in received and status[later] == DeliveryStatus.CANCELLED
        assert report.sent == SUBSCRIBERS - 1
    else:
        # SQLite has one database-wide write lock and its waiters are not queued: the sender,
        # which takes it again right after each commit, can keep the unsubscribe waiting until
        # the chunk is done. Still nothing reached anyone after their unsubscribe committed.
        assert status[later] in (DeliveryStatus.SENT, DeliveryStatus.CANCELLED)
