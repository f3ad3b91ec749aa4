"""The transport circuit against real servers on loopback: a relay that refuses by policy (5.7.1,
530) or a login, and a provider answering 401, pause sending without failing or suppressing anyone,
spend no attempt, and resume by themselves when a probe succeeds: every reader gets the digest once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from aiosmtpd.smtp import AuthResult
from sqlalchemy import select

from digest import dispatch
from digest.config import Settings
from digest.db import session_scope
from digest.delivery.circuit import PAUSED_BY_TRANSPORT, TransportCircuit
from digest.delivery.sink import Received, SMTPSink
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.providers.smtp.transport import SMTPConfig, SMTPTransport
from digest.subscribers.models import Subscriber, Suppression
from digest.wiring import Services, build_services
from tests.conftest import Clock
from tests.factories import planned_issue
from tests.provider_server import ProviderServer

PEOPLE = [(f"reader{i}@example.org", f"Reader {i}", ["cardiology"]) for i in range(5)]
EMAILS = sorted(email for email, _, _ in PEOPLE)


class Relay:
    """Answers every RCPT with ``refuse`` while it is set; accepts and stores otherwise. Counts
    refusals and logins (``password`` is the one it takes)."""

    def __init__(self) -> None:
        self.refuse: str | None = None
        self.refused = 0
        self.rcpts = 0
        self.throttle_from: int | None = None  # RCPT number from which it answers 450 4.7.1
        self.password = "right"
        self.logins: list[tuple[str, bool]] = []  # (mechanism, succeeded)
        self.quits = 0
        self.sink: SMTPSink | None = None

    async def handle_RCPT(self, server, session, envelope, address, options):  # type: ignore[no-untyped-def]
        self.rcpts += 1
        if self.throttle_from is not None and self.rcpts >= self.throttle_from:
            return "450 4.7.1 Too many messages from you, slow down"
        if self.refuse is not None:
            self.refused += 1
            return self.refuse
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]
        assert self.sink is not None
        self.sink._store(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 2.0.0 accepted"

    async def handle_QUIT(self, server, session, envelope):  # type: ignore[no-untyped-def]
        self.quits += 1
        return "221 2.0.0 Bye"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = auth_data.password.decode() == self.password
        self.logins.append((mechanism, ok))
        return AuthResult(success=ok, handled=False)


@pytest.fixture
def relay() -> Iterator[tuple[Relay, SMTPSink]]:
    handler = Relay()
    sink = SMTPSink(handler=handler, authenticator=handler.authenticate, auth_require_tls=False)
    handler.sink = sink
    with sink:
        yield handler, sink


def _services(settings: Settings, clock: Clock, url: str) -> Services:
    return build_services(settings, transport=SMTPTransport(SMTPConfig.from_url(url)), clock=clock)


def _rows(svc: Services) -> dict[str, tuple[str, int]]:
    with session_scope(svc.sessions) as s:
        rows = s.execute(
            select(Subscriber.email, Delivery.status, Delivery.attempts).join(
                Subscriber, Subscriber.id == Delivery.subscriber_id
            )
        )
        return {email: (status, attempts) for email, status, attempts in rows}


def _issue(svc: Services) -> Issue:
    with session_scope(svc.sessions) as s:
        issue = s.scalars(select(Issue)).one()
        s.expunge(issue)
        return issue


def _suppressed(svc: Services) -> list[str]:
    with session_scope(svc.sessions) as s:
        return list(s.scalars(select(Suppression.value)))


def _circuit(svc: Services) -> TransportCircuit:
    with session_scope(svc.sessions) as s:
        row = s.scalars(select(TransportCircuit)).one()
        s.expunge(row)
        return row


@pytest.mark.parametrize(
    "refusal",
    ["554 5.7.1 <reader0@example.org>: Relay access denied", "530 5.7.0 Must issue a STARTTLS command first"],
    ids=["5.7.1", "530"],
)
def test_a_policy_refusal_at_rcpt_fails_nobody_and_everyone_gets_the_digest_once_it_clears(
    settings: Settings, clock: Clock, relay: tuple[Relay, SMTPSink], refusal: str
) -> None:
    handler, sink = relay
    svc = _services(settings, clock, sink.url)
    handler.refuse = refusal
    ids = planned_issue(svc, clock(), PEOPLE)

    report = svc.delivery.deliver(ids)

    assert report.sent == report.failed == 0 and report.retry == [] and refusal in (report.paused or "")
    assert handler.refused == 1  # the rest of the chunk was not tried
    assert _rows(svc) == dict.fromkeys(EMAILS, (DeliveryStatus.PENDING, 0))  # no attempt spent
    assert _suppressed(svc) == []
    issue = _issue(svc)
    assert issue.status == IssueStatus.PAUSED and issue.paused_by == PAUSED_BY_TRANSPORT
    assert refusal in (issue.pause_reason or "")

    # Beat ticks before the first probe is due try nothing; the chunk handed over meanwhile waits.
    dispatch.send_due(svc)
    svc.delivery.deliver(ids)
    assert handler.refused == 1 and sink.received == []

    handler.refuse = None  # the operator fixed the relay
    clock.advance(seconds=settings.probe_first_seconds)
    run = dispatch.send_due(svc)

    assert run.resumed == [issue.id]
    assert sorted(r.rcpt_tos[0] for r in sink.received) == EMAILS  # each exactly once
    assert {status for status, _ in _rows(svc).values()} == {DeliveryStatus.SENT}
    assert _issue(svc).status == IssueStatus.SENT and _suppressed(svc) == []
    svc.close()


def test_a_wrong_password_costs_one_failed_login_per_probe_not_per_message(
    settings: Settings, clock: Clock, relay: tuple[Relay, SMTPSink], caplog: pytest.LogCaptureFixture
) -> None:
    handler, sink = relay
    url = sink.url.replace("smtp://", "smtp://digest:wrong@")
    svc = _services(settings, clock, url)
    ids = planned_issue(svc, clock(), PEOPLE)

    report = svc.delivery.deliver(ids)

    assert handler.logins == [("PLAIN", False)]  # one login, one mechanism: no LOGIN after the 535
    assert "535" in (report.paused or "") and "digest" in (report.paused or "")  # the server's reply, the user
    assert _rows(svc) == dict.fromkeys(EMAILS, (DeliveryStatus.PENDING, 0))

    for probes in range(1, 4):  # three probes, each due after twice the wait of the last
        clock.advance(seconds=(_circuit(svc).next_probe_at - clock()).total_seconds())  # type: ignore[operator]
        dispatch.send_due(svc)
        assert len(handler.logins) == 1 + probes
    assert _circuit(svc).probe_seconds == 8 * settings.probe_first_seconds  # 30 s, then 60, 120, 240
    assert sink.received == [] and _issue(svc).status == IssueStatus.PAUSED
    alerts = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(alerts) == 1 and "535" in alerts[0].getMessage()  # the alert, once; probes warn
    svc.close()

    handler.password = "wrong"  # the relay's password is rotated to what digest has
    fixed = _services(settings, clock, url)
    clock.advance(seconds=3600)
    assert dispatch.send_due(fixed).resumed
    assert sorted(r.rcpt_tos[0] for r in sink.received) == EMAILS
    assert [ok for _, ok in handler.logins].count(True) == 1  # one connection carried every message
    fixed.close()


def test_a_provider_refusing_the_key_for_an_hour_then_accepting_it_delivers_once_and_fails_nobody(
    settings: Settings, clock: Clock
) -> None:
    with ProviderServer() as server:
        provider = settings.model_copy(
            update={"transport": "postmark", "api_token": server.token, "api_url": server.url}
        )
        svc = build_services(provider, clock=clock)
        good = server.token
        server.token = "revoked-while-the-account-is-reviewed"
        ids = planned_issue(svc, clock(), PEOPLE)
        start = clock()

        svc.delivery.deliver(ids)
        assert _issue(svc).status == IssueStatus.PAUSED
        ticks = 0
        while clock() - start < timedelta(hours=2):
            clock.advance(seconds=60)  # beat's tick
            ticks += 1
            if clock() - start >= timedelta(hours=1):
                server.token = good  # the provider answers 200 again
            dispatch.send_due(svc)
            if _issue(svc).status == IssueStatus.SENT:
                break

        assert sorted(a.to for a in server.accepted) == EMAILS  # once each
        rows = _rows(svc)
        assert {status for status, _ in rows.values()} == {DeliveryStatus.SENT}
        assert {attempts for _, attempts in rows.values()} == {1}  # the refused hour cost no attempt
        probes = [path for path, _, _ in server.requests if path == "/server"]
        assert len(probes) <= 8  # 30 s doubling to an hour: a handful of probes, not one per tick
        assert ticks < 120
        svc.close()


def test_throttling_stops_the_batch_spends_no_attempt_and_holds_every_worker_back(
    settings: Settings, clock: Clock, relay: tuple[Relay, SMTPSink]
) -> None:
    handler, sink = relay
    svc = _services(settings, clock, sink.url)
    ids = planned_issue(svc, clock(), PEOPLE)
    handler.throttle_from = 3

    first = svc.delivery.deliver(ids)

    assert first.sent == 2 and first.retry == [] and len(first.throttled) == 3
    assert first.wait == settings.probe_first_seconds  # SMTP says no Retry-After: the first interval
    assert handler.rcpts == 3  # nothing more written into the throttled connection
    rows = _rows(svc)
    assert sorted(status for status, _ in rows.values()) == [DeliveryStatus.PENDING] * 3 + [DeliveryStatus.SENT] * 2
    assert {attempts for status, attempts in rows.values() if status == DeliveryStatus.PENDING} == {0}

    other_worker = svc.delivery.deliver(first.throttled)  # the hand-over, before the wait is over
    assert other_worker.sent == 0 and sorted(other_worker.throttled) == sorted(first.throttled)
    assert handler.rcpts == 3

    handler.throttle_from = None
    clock.advance(seconds=first.wait)
    assert svc.delivery.deliver(first.throttled).sent == 3
    assert sorted(r.rcpt_tos[0] for r in sink.received) == EMAILS  # each once
    assert _issue(svc).status == IssueStatus.SENT
    svc.close()
