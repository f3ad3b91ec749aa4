"""SMTP transport against a real aiosmtpd server that answers as scripted: 4xx retried, 5xx failed and
suppressed, a refused recipient inside a working connection, connections dropped mid-batch."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.models import Delivery, DeliveryStatus
from digest.delivery.sink import Received, SMTPSink
from digest.delivery.smtp import SMTPConfig, SMTPTransport
from digest.events.models import Suppression, SuppressionReason
from digest.wiring import Services, build_services
from tests.conftest import Clock
from tests.factories import outgoing, planned_issue

DROP = "drop"  # abort the connection instead of answering DATA


@dataclass
class Scripted:
    """Answers DATA number n (1-based, across connections) from ``data``, RCPT for an address from
    ``rcpt``; ``close_after`` closes the connection right after accepting DATA number n."""

    data: dict[int, str] = field(default_factory=dict)
    rcpt: dict[str, str] = field(default_factory=dict)
    close_after: set[int] = field(default_factory=set)
    sink: SMTPSink | None = None
    count: int = 0

    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]  # noqa: N802
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        self.count += 1
        reply = self.data.get(self.count, "250 2.0.0 accepted")
        if reply == DROP:
            server.transport.abort()
            return "250 never seen"
        if reply.startswith("250"):
            assert self.sink is not None
            self.sink._store(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), envelope.original_content or b""))
        if self.count in self.close_after:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return reply


@pytest.fixture
def script() -> Scripted:
    return Scripted()


@pytest.fixture
def server(script: Scripted) -> Iterator[SMTPSink]:
    sink = SMTPSink(handler=script)
    script.sink = sink
    with sink:
        yield sink


@pytest.fixture
def svc(settings: Settings, clock: Clock, server: SMTPSink) -> Iterator[Services]:
    services = build_services(settings, transport=SMTPTransport(SMTPConfig.from_url(server.url)), clock=clock)
    yield services
    services.close()


PEOPLE = [(f"reader{i}@example.org", f"Reader {i}", ["cardiology"]) for i in range(4)]


def _ledger(svc: Services) -> dict[str, tuple[str, str | None]]:
    from digest.subscribers.models import Subscriber

    with session_scope(svc.sessions) as s:
        rows = s.execute(select(Subscriber.email, Delivery.status, Delivery.error).join(Subscriber, Subscriber.id == Delivery.subscriber_id))
        return {email: (status, error) for email, status, error in rows}


def _rcpts(server: SMTPSink) -> list[str]:
    return sorted(r.rcpt_tos[0] for r in server.received)


def test_4xx_is_transient_and_the_retry_delivers_once(svc: Services, server: SMTPSink, script: Scripted, clock: Clock) -> None:
    script.data = {2: "451 4.3.0 try again later"}
    ids = planned_issue(svc, clock(), PEOPLE)

    first = svc.delivery.deliver(ids)
    assert first.sent == 3 and first.retry == [ids[1]]
    assert _ledger(svc)["reader1@example.org"] == (DeliveryStatus.PENDING, "451 4.3.0 try again later")

    second = svc.delivery.deliver(ids)  # what the task's retry does, after its backoff
    assert second.sent == 1 and second.skipped == 3
    assert _rcpts(server) == [email for email, _, _ in PEOPLE]
    assert {status for status, _ in _ledger(svc).values()} == {DeliveryStatus.SENT}
    assert svc.transport.connections_opened == 1  # type: ignore[attr-defined]


def test_5xx_at_rcpt_fails_the_row_and_suppresses_the_address(svc: Services, server: SMTPSink, script: Scripted, clock: Clock) -> None:
    script.rcpt = {"reader2@example.org": "550 5.1.1 no such user"}
    ids = planned_issue(svc, clock(), PEOPLE)

    report = svc.delivery.deliver(ids)

    assert report.sent == 3 and report.failed == 1 and not report.retry
    assert _rcpts(server) == ["reader0@example.org", "reader1@example.org", "reader3@example.org"]
    assert _ledger(svc)["reader2@example.org"] == (DeliveryStatus.FAILED, "550 5.1.1 no such user")
    with session_scope(svc.sessions) as s:
        listed = s.scalar(select(Suppression).where(Suppression.value == "reader2@example.org"))
        assert listed is not None and listed.reason == SuppressionReason.HARD_BOUNCE
    # The refused recipient did not cost the connection: the others went over the same one.
    assert svc.transport.connections_opened == 1  # type: ignore[attr-defined]
    assert svc.delivery.deliver(ids).sent == 0


def test_5xx_after_data_fails_the_message_but_keeps_the_address(svc: Services, server: SMTPSink, script: Scripted, clock: Clock) -> None:
    script.data = {1: "554 5.7.1 message content rejected"}
    ids = planned_issue(svc, clock(), PEOPLE[:2])

    report = svc.delivery.deliver(ids)

    assert report.failed == 1 and report.sent == 1
    assert _ledger(svc)["reader0@example.org"][0] == DeliveryStatus.FAILED
    with session_scope(svc.sessions) as s:
        assert s.scalar(select(Suppression.id)) is None


def test_connection_dropped_during_data_loses_nothing_and_duplicates_nothing(
    svc: Services, server: SMTPSink, script: Scripted, clock: Clock
) -> None:
    script.data = {2: DROP}
    ids = planned_issue(svc, clock(), PEOPLE)

    first = svc.delivery.deliver(ids)
    assert first.sent == 3 and first.retry == [ids[1]]
    assert svc.transport.connections_opened == 2  # type: ignore[attr-defined]  # reconnected for the rest

    svc.delivery.deliver(ids)
    assert _rcpts(server) == [email for email, _, _ in PEOPLE]  # each exactly once


def test_pooled_connection_closed_by_the_server_is_reopened_at_once(
    svc: Services, server: SMTPSink, script: Scripted, clock: Clock
) -> None:
    script.close_after = {2}
    ids = planned_issue(svc, clock(), PEOPLE)

    report = svc.delivery.deliver(ids)

    assert report.sent == 4 and not report.retry  # nothing had been handed over: no retry needed
    assert _rcpts(server) == [email for email, _, _ in PEOPLE]
    assert svc.transport.connections_opened == 2  # type: ignore[attr-defined]


def test_transport_4xx_then_250_on_the_same_connection(server: SMTPSink, script: Scripted) -> None:
    script.data = {1: "451 4.7.1 greylisted"}
    transport = SMTPTransport(SMTPConfig.from_url(server.url))
    msg = outgoing(1, "grey@example.org")

    first, = transport.send([msg])
    second, = transport.send([msg])

    assert not first.accepted and not first.permanent and first.error == "451 4.7.1 greylisted"
    assert second.accepted and second.provider_id == msg.message_id
    assert transport.connections_opened == 1
    transport.close()
