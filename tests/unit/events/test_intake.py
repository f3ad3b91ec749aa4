"""Bounce intake for operators on their own MTA: messages carry a VERP return path and a Feedback-ID;
DSNs (RFC 3464) and ARF reports (RFC 5965) handed to ``digest bounces serve`` over LMTP suppress the
right subscriber (a 4.x.x DSN only once the soft-bounce threshold is reached)."""

from __future__ import annotations

import smtplib
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink, free_port
from digest.events.intake import listener
from digest.events.models import WebhookEvent
from digest.ledger.models import Delivery, DeliveryStatus
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression, SuppressionReason
from digest.wiring import Services, bounce_intake, build_services
from tests.conftest import Clock
from tests.factories import planned_issue

BOUNCE_DOMAIN = "bounces.news.example.org"
PEOPLE = [(f"reader{i}@example.org", f"Reader {i}", ["cardiology"]) for i in range(4)]


def dsn(report_id: str, recipient: str, status: str, action: str, original_message_id: str) -> bytes:
    """A delivery status notification as Postfix writes one (multipart/report, three parts)."""
    return (
        "From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        f"To: {recipient.replace('@', '=')}\r\n"
        "Subject: Undelivered Mail Returned to Sender\r\n"
        f"Message-ID: <{report_id}@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="B"\r\n'
        "\r\n--B\r\nContent-Type: text/plain\r\n\r\n"
        "I'm sorry to have to inform you that your message could not be delivered.\r\n"
        "\r\n--B\r\nContent-Type: message/delivery-status\r\n\r\n"
        "Reporting-MTA: dns; mx.example.net\r\nArrival-Date: Sat, 5 Dec 2026 07:00:00 +0000\r\n\r\n"
        f"Final-Recipient: rfc822; {recipient}\r\nOriginal-Recipient: rfc822;{recipient}\r\n"
        f"Action: {action}\r\nStatus: {status}\r\n"
        f"Diagnostic-Code: smtp; 550 {status} <{recipient}>: the server said no\r\n"
        "\r\n--B\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        f"From: Evidence Digest <digest@news.example.org>\r\nTo: {recipient}\r\n"
        f"Message-ID: {original_message_id}\r\nSubject: Your digest\r\n"
        "\r\n--B--\r\n"
    ).encode()


def arf(report_id: str, recipient: str, original_message_id: str) -> bytes:
    """An abuse report (RFC 5965) as a mailbox provider's feedback loop sends one."""
    return (
        "From: fbl@mailbox.example.com\r\nTo: fbl@news.example.org\r\nSubject: FW: complaint\r\n"
        f"Message-ID: <{report_id}@mailbox.example.com>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=feedback-report; boundary="F"\r\n'
        "\r\n--F\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n"
        "\r\n--F\r\nContent-Type: message/feedback-report\r\n\r\n"
        "Feedback-Type: abuse\r\nUser-Agent: ExampleFBL/1.0\r\nVersion: 1\r\n"
        f"Original-Rcpt-To: {recipient}\r\nReporting-MTA: dns; mailbox.example.com\r\n"
        "\r\n--F\r\nContent-Type: message/rfc822\r\n\r\n"
        f"From: Evidence Digest <digest@news.example.org>\r\nTo: {recipient}\r\n"
        f"Message-ID: {original_message_id}\r\nSubject: Your digest\r\n\r\nbody\r\n"
        "\r\n--F--\r\n"
    ).encode()


@pytest.fixture
def svc(settings: Settings, clock: Clock) -> Iterator[Services]:
    services = build_services(
        settings.model_copy(update={"bounce_domain": BOUNCE_DOMAIN, "soft_bounce_limit": 3}), clock=clock
    )
    yield services
    services.close()


@pytest.fixture
def lmtp(svc: Services) -> Iterator[tuple[str, int]]:
    port = free_port()
    server = listener(bounce_intake(svc), "127.0.0.1", port)
    server.start()
    yield "127.0.0.1", port
    server.stop()


def _sent(svc: Services, smtp_sink: SMTPSink, clock: Clock) -> dict[str, tuple[str, str]]:
    """Send the digest; email -> (VERP return path, Message-ID) as the SMTP server received them."""
    ids = planned_issue(svc, clock(), PEOPLE)
    assert svc.delivery.deliver(ids).sent == len(PEOPLE)
    return {r.rcpt_tos[0]: (r.mail_from, str(r.message["Message-ID"])) for r in smtp_sink.received}


def _hand_over(where: tuple[str, int], return_path: str, report: bytes) -> None:
    """What the MTA does: LMTP to the listener, the report addressed to the VERP return path."""
    with smtplib.LMTP(*where) as client:
        client.sendmail("", [return_path], report)


def _suppressed(svc: Services) -> dict[str, str]:
    with session_scope(svc.sessions) as s:
        return dict(s.execute(select(Suppression.value, Suppression.reason)).all())


def test_messages_carry_a_verp_return_path_and_a_feedback_id(svc: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    sent = _sent(svc, smtp_sink, clock)
    for email, (return_path, _) in sent.items():
        local, _, domain = return_path.partition("@")
        assert domain == BOUNCE_DOMAIN and local.startswith("bounces+")
        with session_scope(svc.sessions) as s:
            sid = s.scalar(select(Subscriber.id).where(Subscriber.email == email))
        assert svc.tokens.read_mailbox(local.removeprefix("bounces+")) == sid  # names its reader
    feedback = {str(r.message["Feedback-ID"]) for r in smtp_sink.received}
    assert len(feedback) == 1 and feedback.pop().endswith(":clinician:digest:digest")


def test_a_hard_bounce_dsn_suppresses_its_subscriber_and_fails_the_delivery(
    svc: Services, smtp_sink: SMTPSink, clock: Clock, lmtp: tuple[str, int]
) -> None:
    sent = _sent(svc, smtp_sink, clock)
    return_path, message_id = sent["reader1@example.org"]
    # The remote MTA names the address as it knew it; the VERP token says whose message it was.
    _hand_over(lmtp, return_path, dsn("r1", "Reader1@Example.org", "5.1.1", "failed", message_id))

    assert _suppressed(svc) == {"reader1@example.org": SuppressionReason.HARD_BOUNCE}
    with session_scope(svc.sessions) as s:
        failed = s.execute(
            select(Subscriber.email)
            .join(Delivery, Delivery.subscriber_id == Subscriber.id)
            .where(Delivery.status == DeliveryStatus.FAILED)
        ).all()
    assert failed == [("reader1@example.org",)]


def test_an_arf_report_suppresses_and_unsubscribes_the_complainer(
    svc: Services, smtp_sink: SMTPSink, clock: Clock, lmtp: tuple[str, int]
) -> None:
    sent = _sent(svc, smtp_sink, clock)
    return_path, message_id = sent["reader2@example.org"]
    _hand_over(lmtp, return_path, arf("c1", "reader2@example.org", message_id))
    _hand_over(lmtp, return_path, arf("c1", "reader2@example.org", message_id))  # the same report again

    assert _suppressed(svc) == {"reader2@example.org": SuppressionReason.COMPLAINT}
    with session_scope(svc.sessions) as s:
        status = s.scalar(select(Subscriber.status).where(Subscriber.email == "reader2@example.org"))
        assert status == SubscriberStatus.UNSUBSCRIBED
        assert s.scalar(select(WebhookEvent.provider)) == "mta"


def test_soft_bounces_suppress_only_at_the_threshold(
    svc: Services, smtp_sink: SMTPSink, clock: Clock, lmtp: tuple[str, int]
) -> None:
    sent = _sent(svc, smtp_sink, clock)
    return_path, message_id = sent["reader3@example.org"]

    _hand_over(lmtp, return_path, dsn("d0", "reader3@example.org", "4.4.7", "delayed", message_id))  # still trying
    _hand_over(lmtp, return_path, dsn("s1", "reader3@example.org", "4.2.2", "failed", message_id))
    _hand_over(lmtp, return_path, dsn("s2", "reader3@example.org", "5.2.2", "failed", message_id))  # mailbox full
    assert _suppressed(svc) == {}
    _hand_over(lmtp, return_path, dsn("s3", "reader3@example.org", "4.2.2", "failed", message_id))
    assert _suppressed(svc) == {"reader3@example.org": SuppressionReason.HARD_BOUNCE}


def test_the_listener_takes_only_bounce_addresses_and_forged_tokens_change_nothing(
    svc: Services, smtp_sink: SMTPSink, clock: Clock, lmtp: tuple[str, int]
) -> None:
    sent = _sent(svc, smtp_sink, clock)
    _, message_id = sent["reader0@example.org"]
    with smtplib.LMTP(*lmtp) as client, pytest.raises(smtplib.SMTPRecipientsRefused):
        client.sendmail("", ["postmaster@news.example.org"], dsn("x", "reader0@example.org", "5.1.1", "failed", ""))
    forged = f"bounces+999-aaaaaaaaaaaa@{BOUNCE_DOMAIN}"
    _hand_over(lmtp, forged, dsn("f1", "nobody@example.org", "5.1.1", "failed", "<unknown@elsewhere>"))
    _hand_over(lmtp, forged, dsn("f2", "reader0@example.org", "5.1.1", "failed", message_id))
    assert _suppressed(svc) == {}  # only the MAC in the return path says whose message bounced
