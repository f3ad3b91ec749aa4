"""SMTP transport against a real aiosmtpd server that answers as scripted: 4xx retried, 5xx failed and
suppressed, a refused recipient inside a working connection, connections dropped mid-batch."""

from __future__ import annotations

import asyncio
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email import message_from_bytes, policy
from pathlib import Path

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import Received, SMTPSink
from digest.delivery.transport import TransientError
from digest.ledger.models import Delivery, DeliveryStatus
from digest.providers.smtp.transport import SMTPConfig, SMTPTransport
from digest.rendering.headers import mime_bytes
from digest.subscribers.models import Suppression, SuppressionReason
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
    pipelining: bool = False  # offer RFC 2920 PIPELINING in the EHLO reply
    sink: SMTPSink | None = None
    count: int = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        return [*responses[:-1], "250-PIPELINING", responses[-1]] if self.pipelining else responses

    async def handle_RCPT(self, server, session, envelope, address, options):
        if address in self.rcpt:
            return self.rcpt[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        self.count += 1
        reply = self.data.get(self.count, "250 2.0.0 accepted")
        if reply == DROP:
            server.transport.abort()
            return "250 never seen"
        if reply.startswith("250"):
            assert self.sink is not None
            self.sink._store(
                Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), envelope.original_content or b"")
            )
        if self.count in self.close_after:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return reply


@pytest.fixture(params=[False, True], ids=["step-by-step", "pipelined"])
def script(request: pytest.FixtureRequest) -> Scripted:
    return Scripted(pipelining=request.param)


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
        rows = s.execute(
            select(Subscriber.email, Delivery.status, Delivery.error).join(
                Subscriber, Subscriber.id == Delivery.subscriber_id
            )
        )
        return {email: (status, error) for email, status, error in rows}


def _email_of(svc: Services, delivery_id: int) -> str:
    """Planning does not number rows in subscriber order: the n-th DATA is the n-th delivery id's."""
    from digest.subscribers.models import Subscriber

    with session_scope(svc.sessions) as s:
        email = s.scalar(
            select(Subscriber.email)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.id == delivery_id)
        )
        assert email is not None
        return email


def _rcpts(server: SMTPSink) -> list[str]:
    return sorted(r.rcpt_tos[0] for r in server.received)


def test_4xx_is_transient_and_the_retry_delivers_once(
    svc: Services, server: SMTPSink, script: Scripted, clock: Clock
) -> None:
    script.data = {2: "451 4.3.0 try again later"}
    ids = planned_issue(svc, clock(), PEOPLE)

    first = svc.delivery.deliver(ids)
    assert first.sent == 3 and first.retry == [ids[1]]
    assert _ledger(svc)[_email_of(svc, ids[1])] == (DeliveryStatus.PENDING, "451 4.3.0 try again later")

    second = svc.delivery.deliver(ids)  # what the task's retry does, after its backoff
    assert second.sent == 1 and second.skipped == 3
    assert _rcpts(server) == [email for email, _, _ in PEOPLE]
    assert {status for status, _ in _ledger(svc).values()} == {DeliveryStatus.SENT}
    assert svc.transport.connections_opened == 1  # type: ignore[attr-defined]


def test_5xx_at_rcpt_fails_the_row_and_suppresses_the_address(
    svc: Services, server: SMTPSink, script: Scripted, clock: Clock
) -> None:
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


def test_5xx_after_data_fails_the_message_but_keeps_the_address(
    svc: Services, server: SMTPSink, script: Scripted, clock: Clock
) -> None:
    script.data = {1: "554 5.7.1 message content rejected"}
    ids = planned_issue(svc, clock(), PEOPLE[:2])

    report = svc.delivery.deliver(ids)

    assert report.failed == 1 and report.sent == 1
    assert _ledger(svc)[_email_of(svc, ids[0])][0] == DeliveryStatus.FAILED
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

    (first,) = transport.send([msg])
    (second,) = transport.send([msg])

    assert not first.accepted and not first.permanent and first.error == "451 4.7.1 greylisted"
    assert second.accepted and second.provider_id == msg.message_id
    assert transport.connections_opened == 1
    assert transport._conn is not None and bool(transport._conn.has_extn("pipelining")) is script.pipelining
    transport.close()


def test_a_batch_on_one_connection_maps_every_reply_to_its_message(server: SMTPSink, script: Scripted) -> None:
    """Pipelined, each message's envelope goes out with the previous message's content; the replies
    still land on the right messages, and a refusal or a close in the middle loses nothing."""
    script.data = {2: "451 4.3.0 try again later", 4: "554 5.7.1 content rejected"}
    script.rcpt = {"r3@example.org": "550 5.1.1 no such user"}
    script.close_after = {5}  # the server closes after DATA 5, the message of r6
    transport = SMTPTransport(SMTPConfig.from_url(server.url), batch_size=8)
    messages = [outgoing(n, f"r{n}@example.org") for n in range(1, 9)]

    results = {r.delivery_id: r for r in transport.send(messages)}

    assert sorted(results) == list(range(1, 9))
    accepted = [n for n, r in sorted(results.items()) if r.accepted]
    assert not results[2].permanent and results[2].error == "451 4.3.0 try again later"
    assert results[3].permanent and results[3].bounce
    assert results[5].permanent and not results[5].bounce  # DATA 4 is r5's: r3 never reached DATA
    # r7's envelope went out with r6's content: the server may have answered it (even 354) before
    # closing; then r7 is a transient failure ("connection lost"), retried later; else it goes out
    # on the second connection. Either way nothing is lost and nothing arrives twice.
    assert accepted in ([1, 4, 6, 7, 8], [1, 4, 6, 8])
    if 7 not in accepted:
        assert not results[7].permanent and "connection lost" in (results[7].error or "")
    assert _rcpts(server) == sorted(f"r{n}@example.org" for n in accepted)
    assert [str(r.message["Message-ID"]) for r in server.received] == [messages[n - 1].message_id for n in accepted]
    assert transport.connections_opened == 2
    transport.close()


def test_a_drop_during_data_in_a_batch_loses_only_that_message(server: SMTPSink, script: Scripted) -> None:
    script.data = {3: DROP}
    transport = SMTPTransport(SMTPConfig.from_url(server.url), batch_size=5)
    messages = [outgoing(n, f"r{n}@example.org") for n in range(1, 6)]

    results = {r.delivery_id: r for r in transport.send(messages)}

    assert [n for n, r in sorted(results.items()) if r.accepted] == [1, 2, 4, 5]
    assert not results[3].accepted and not results[3].permanent and "during DATA" in (results[3].error or "")
    assert _rcpts(server) == [f"r{n}@example.org" for n in (1, 2, 4, 5)]
    assert transport.connections_opened == 2
    transport.close()


def test_lines_starting_with_a_dot_arrive_as_written(server: SMTPSink, script: Scripted) -> None:
    """DATA doubles a leading dot (RFC 5321 4.5.2) and the server takes it off again."""
    transport = SMTPTransport(SMTPConfig.from_url(server.url), batch_size=2)
    bodies = [b"Subject: dots\r\n\r\n.one\r\n..two\r\nthree\r\n.\r\n", b"Subject: end\r\n\r\nno final line break\r\n.x"]
    messages = [replace(outgoing(n, f"d{n}@example.org"), raw=raw) for n, raw in enumerate(bodies, 1)]

    assert all(r.accepted for r in transport.send(messages))
    assert [r.rcpt_tos for r in server.received] == [("d1@example.org",), ("d2@example.org",)]
    assert [r.raw for r in server.received] == [bodies[0], bodies[1] + b"\r\n"]
    transport.close()


def test_a_composed_message_with_dotted_lines_goes_unstuffed_and_arrives_as_written(
    server: SMTPSink, script: Scripted
) -> None:
    """``mime_bytes`` writes a line-leading dot as ``=2E``, so its messages are sent without a
    search for dots (the bytes are ``DotFree``), and what the server reads decodes to the text written."""
    text = ".starts with a dot\n" + "." * 90 + "\n" + "x" * 75 + ".\n.\n"
    html = "<p>" + "." * 200 + "</p>"
    base = replace(outgoing(1, "dots@example.org"), text=text, html=html)
    raw = mime_bytes(base, datetime(2026, 11, 27, 12, tzinfo=UTC))
    assert not any(line.startswith(b".") for line in raw.split(b"\r\n"))
    transport = SMTPTransport(SMTPConfig.from_url(server.url))

    assert all(r.accepted for r in transport.send([replace(base, raw=raw)]))
    received = message_from_bytes(server.received[0].raw, policy=policy.default)
    bodies = [received.get_body((part,)) for part in ("plain", "html")]
    decoded = [body.get_content().replace("\r\n", "\n") for body in bodies if body is not None]
    assert decoded == [text, html + "\n"]
    transport.close()


@pytest.fixture
def batched(settings: Settings, clock: Clock, server: SMTPSink) -> Iterator[Services]:
    """Four messages per ledger transaction (DIGEST_SMTP_BATCH_SIZE=4)."""
    services = build_services(
        settings, transport=SMTPTransport(SMTPConfig.from_url(server.url), batch_size=4), clock=clock
    )
    yield services
    services.close()


def test_a_batch_records_every_outcome_of_its_messages(
    batched: Services, server: SMTPSink, script: Scripted, clock: Clock
) -> None:
    ids = planned_issue(batched, clock(), PEOPLE)
    bounced = _email_of(batched, ids[3])
    script.rcpt = {bounced: "550 5.1.1 no such user"}
    script.data = {2: "451 4.3.0 try again later"}  # the second DATA: the row of ids[1]

    report = batched.delivery.deliver(ids)

    assert (report.sent, report.failed, report.retry) == (2, 1, [ids[1]])
    assert _rcpts(server) == sorted([_email_of(batched, ids[0]), _email_of(batched, ids[2])])
    ledger = _ledger(batched)
    assert ledger[_email_of(batched, ids[1])] == (DeliveryStatus.PENDING, "451 4.3.0 try again later")
    assert ledger[bounced] == (DeliveryStatus.FAILED, "550 5.1.1 no such user")
    with session_scope(batched.sessions) as s:
        sent = s.execute(
            select(Delivery.message_id, Delivery.provider_message_id, Delivery.variant_key).where(
                Delivery.status == DeliveryStatus.SENT
            )
        ).all()
        assert sorted(m for m, _, _ in sent) == sorted(str(r.message["Message-ID"]) for r in server.received)
        assert all(provider == m and key for m, provider, key in sent)
        # The rows not sent keep nothing of the "sent" that taking them recorded.
        unsent = s.execute(
            select(Delivery.sent_at, Delivery.provider_message_id, Delivery.variant_key).where(
                Delivery.status != DeliveryStatus.SENT
            )
        ).all()
        assert unsent == [(None, None, "")] * 2
        assert s.scalar(select(Suppression.value)) == bounced


class _KilledAfter:
    """A send recorder that stands for a worker killed after its n-th transport batch was accepted
    by the server and before that batch's commit."""

    def __init__(self, n: int):
        self.calls, self.n = 0, n

    def record(self, transport: str, seconds: float, results: object) -> None:
        self.calls += 1
        if self.calls == self.n:
            raise SystemExit("killed between send and commit")


def test_a_crash_between_send_and_commit_resends_that_batch_only(
    batched: Services, server: SMTPSink, script: Scripted, clock: Clock
) -> None:
    people = [(f"reader{i}@example.org", f"Reader {i}", ["cardiology"]) for i in range(10)]
    ids = planned_issue(batched, clock(), people)
    batched.delivery.recorder = _KilledAfter(2)

    with pytest.raises(SystemExit):
        batched.delivery.deliver(ids)

    assert len(server.received) == 8  # two batches reached the server; the second was not recorded
    with session_scope(batched.sessions) as s:
        statuses = dict(s.execute(select(Delivery.id, Delivery.status)).all())
    # The first batch is recorded; the lost one was rolled back and stays pending with the rest.
    assert [statuses[i] for i in ids] == [DeliveryStatus.SENT] * 4 + [DeliveryStatus.PENDING] * 6

    batched.delivery.recorder = _KilledAfter(0)  # the redelivered task
    again = batched.delivery.deliver(ids)

    assert again.sent == 6 and again.skipped == 4
    message_ids = [str(r.message["Message-ID"]) for r in server.received]
    lost = {str(r.message["Message-ID"]) for r in server.received[4:8]}
    # Exactly the lost batch went out twice, under the same Message-IDs; nothing else repeated.
    assert len(message_ids) == 14 and len(set(message_ids)) == 10
    assert {m for m in message_ids if message_ids.count(m) == 2} == lost
    assert {status for status, _ in _ledger(batched).values()} == {DeliveryStatus.SENT}


def test_a_server_gone_for_good_mid_batch_keeps_what_it_accepted(server: SMTPSink, script: Scripted) -> None:
    """The connection drops at the third message and no new one can be opened: the two messages the
    server accepted stay accepted (raising would have sent them again later), the rest are
    transient failures."""
    script.data = {3: DROP}
    transport = SMTPTransport(SMTPConfig.from_url(server.url), batch_size=5)
    reconnect = transport._connect

    def first_connection_only() -> object:
        if transport.connections_opened:
            raise TransientError(f"cannot connect to SMTP server {server.url}: connection refused")
        return reconnect()

    transport._connect = first_connection_only  # type: ignore[method-assign]
    messages = [outgoing(n, f"r{n}@example.org") for n in range(1, 6)]

    results = {r.delivery_id: r for r in transport.send(messages)}

    assert sorted(results) == [1, 2, 3, 4, 5]
    assert [n for n, r in sorted(results.items()) if r.accepted] == [1, 2]
    assert all(not results[n].permanent for n in (3, 4, 5))
    assert "cannot connect" in (results[4].error or "") and "cannot connect" in (results[5].error or "")
    assert _rcpts(server) == ["r1@example.org", "r2@example.org"]


def test_a_server_unreachable_from_the_start_fails_the_whole_batch(server: SMTPSink, script: Scripted) -> None:
    transport = SMTPTransport(SMTPConfig.from_url(server.url), batch_size=3)

    def unreachable() -> object:
        raise TransientError("cannot connect to SMTP server: connection refused")

    transport._connect = unreachable  # type: ignore[method-assign]
    with pytest.raises(TransientError, match="cannot connect"):
        transport.send([outgoing(n, f"r{n}@example.org") for n in range(1, 4)])
    assert not server.received


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("smtp://user:pass@mail.example.org:587", True),
        ("smtp://user:pass@mail.example.org:587?starttls=1", False),
        ("smtps://user:pass@mail.example.org", False),
        ("smtp://user:pass@127.0.0.1:1025", False),  # a relay on this host: nothing crosses a network
        ("smtp://mail.example.org:25", False),  # no credentials
    ],
)
def test_credentials_are_never_sent_in_the_clear(url: str, refused: bool) -> None:
    if refused:
        with pytest.raises(ValueError, match="the password would cross the network in the clear"):
            SMTPConfig.from_url(url)
    else:
        SMTPConfig.from_url(url)


def test_outbox_files_are_owner_only(tmp_path: Path) -> None:
    from digest.providers.outbox import OutboxTransport

    OutboxTransport(tmp_path / "outbox").send([outgoing(1, "reader@example.org")])
    (eml,) = (tmp_path / "outbox").iterdir()
    assert stat.S_IMODE(eml.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "outbox").stat().st_mode) == 0o700
