"""Outgoing webhooks in one process (no broker: the sender runs right after the commit that
emitted the events): signatures a Standard Webhooks library accepts, only the endpoints listening
for an event get it, per-subscriber order even while an earlier event is being retried, retries
with backoff until the event is marked failed, and the operator's views of it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from aiosmtpd.smtp import SMTP, Envelope
from aiosmtpd.smtp import Session as SMTPSession
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.sink import Received, SMTPSink
from digest.dispatch import send_issue
from digest.events.delivery_event import DeliveryEvent, EventKind
from digest.events.service import record_events
from digest.integrations.models import WebhookDelivery, WebhookEndpoint, WebhookStatus
from digest.integrations.webhooks import new_secret, sign
from digest.rights import find_subscriber
from digest.subscribers.models import Suppression, SuppressionReason
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.factories import add_campaign, add_subscriber, add_summaries, summary_record
from tests.webhook_receiver import WebhookReceiver


class _RefusingHandler:
    """The SMTP server refuses one recipient at RCPT with a 5xx (a hard bounce at send time)."""

    def __init__(self, sink: SMTPSink, refuse: str):
        self.sink, self.refuse = sink, refuse

    async def handle_RCPT(
        self, server: SMTP, session: SMTPSession, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address == self.refuse:
            return "550 5.1.1 No such user"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: SMTPSession, envelope: Envelope) -> str:
        self.sink._store(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), envelope.original_content or b""))
        return "250 2.0.0 OK"


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    sink = SMTPSink()
    sink.controller.handler = _RefusingHandler(sink, "gone@example.org")
    with sink:
        yield sink


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as r:
        yield r


def endpoint(services: Services, receiver: WebhookReceiver, path: str, *events: str) -> int:
    with session_scope(services.sessions) as s:
        row = WebhookEndpoint(url=receiver.url(path), secret=new_secret(), events=" ".join(events))
        s.add(row)
        s.flush()
        receiver.secrets[path] = row.secret
        return row.id


def test_the_signature_is_the_standard_one() -> None:
    from standardwebhooks.webhooks import Webhook

    secret = new_secret()
    body = json.dumps({"type": "subscribed", "data": {}})
    from datetime import UTC, datetime

    stamp = int(datetime.now(UTC).timestamp())
    headers = {
        "webhook-id": "msg_1",
        "webhook-timestamp": str(stamp),
        "webhook-signature": sign(secret, "msg_1", stamp, body),
    }
    assert Webhook(secret).verify(body, headers) == {"type": "subscribed", "data": {}}
    headers["webhook-signature"] = sign(new_secret(), "msg_1", stamp, body)
    with pytest.raises(Exception, match="signature"):
        Webhook(secret).verify(body, headers)


def test_events_reach_the_endpoints_that_listen_signed_and_in_order(
    services: Services, web: TestClient, receiver: WebhookReceiver
) -> None:
    endpoint(services, receiver, "/all", "subscribed", "confirmed", "unsubscribed", "complained", "bounced")
    endpoint(services, receiver, "/unsubs", "unsubscribed")
    web.post("/subscribe", data={"email": "dee@example.org", "specialties": ["cardiology"]})
    with session_scope(services.sessions) as s:
        dee = find_subscriber(s, "dee@example.org")
        assert dee is not None
        dee_id = dee.id
    web.get(f"/confirm/{services.tokens.make_confirm(dee_id, services.clock())}")
    web.post(
        f"/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, dee_id)}", data={"List-Unsubscribe": "One-Click"}
    )
    web.post(
        f"/unsubscribe/{services.tokens.make(Purpose.UNSUBSCRIBE, dee_id)}", data={"List-Unsubscribe": "One-Click"}
    )

    everything = receiver.at("/all")
    assert [(r.type, r.subscriber_id) for r in everything] == [
        ("subscribed", dee_id),
        ("confirmed", dee_id),
        ("unsubscribed", dee_id),
    ]
    assert all(r.verified and r.status == 204 for r in everything)
    assert len({r.message_id for r in everything}) == 3
    assert everything[2].body["data"]["method"] == "one-click"
    assert [r.type for r in receiver.at("/unsubs")] == ["unsubscribed"]
    with session_scope(services.sessions) as s:
        assert set(s.scalars(select(WebhookDelivery.status))) == {WebhookStatus.DELIVERED}

    with session_scope(services.sessions) as s:  # a complaint: "complained", then the unsubscribe it causes
        eve = add_subscriber(s, "eve@example.org", ["oncology"], created_at=services.clock())
        eve_id = eve.id
    with session_scope(services.sessions) as s:
        record_events(s, [DeliveryEvent("postmark", "c-1", EventKind.COMPLAINT, "eve@example.org")], services.clock())
    assert [(r.type, r.subscriber_id) for r in receiver.at("/all")[3:]] == [
        ("subscribed", eve_id),
        ("complained", eve_id),
        ("unsubscribed", eve_id),
    ]


def test_a_failing_receiver_gets_retries_then_the_event_is_failed_and_shown(
    services: Services,
    receiver: WebhookReceiver,
    clock,
    cli,  # type: ignore[no-untyped-def]
) -> None:
    services.webhooks.max_attempts = 3
    endpoint(services, receiver, "/down", "subscribed", "unsubscribed")
    receiver.failing.add("/down")
    with session_scope(services.sessions) as s:
        add_subscriber(
            s, "fay@example.org", ["cardiology"], created_at=clock()
        )  # emits "subscribed": first attempt, 500
    with session_scope(services.sessions) as s:
        fay = find_subscriber(s, "fay@example.org")
        assert fay is not None
        from digest.subscribers.lifecycle import unsubscribe

        unsubscribe(s, fay.id, clock(), source="test")  # waits behind "subscribed": not sent yet
    assert [r.type for r in receiver.at("/down")] == ["subscribed"]
    with session_scope(services.sessions) as s:
        first = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).first()
        assert first is not None and first.attempts == 1 and first.status == WebhookStatus.PENDING
        waited = first.next_attempt_at - clock()
    assert services.webhooks.retry_seconds / 2 <= waited.total_seconds() <= services.webhooks.retry_seconds

    report = services.webhooks.deliver_due()  # not due yet: nothing is sent
    assert report.delivered == report.retrying == report.failed == 0 and len(receiver.at("/down")) == 1
    for _ in range(2):
        clock.advance(days=1)
        services.webhooks.deliver_due()
    # "subscribed" failed after 3 attempts; only then did "unsubscribed" go (its first attempt).
    assert [r.type for r in receiver.at("/down")] == ["subscribed"] * 3 + ["unsubscribed"]
    with session_scope(services.sessions) as s:
        rows = s.scalars(select(WebhookDelivery).order_by(WebhookDelivery.id)).all()
        assert [(r.event, r.status, r.attempts, r.last_status_code) for r in rows] == [
            ("subscribed", "failed", 3, 500),
            ("unsubscribed", "pending", 1, 500),
        ]
    listing = cli("webhooks", "list")
    assert listing.exit_code == 0 and "/down" in listing.stdout
    [row] = [line for line in listing.stdout.splitlines() if "/down" in line]
    assert [c.strip() for c in row.split("│") if c.strip()][-3:] == ["0", "1", "1"]  # delivered, pending, failed


def test_every_bounce_that_suppresses_tells_receivers_once(
    services: Services,
    receiver: WebhookReceiver,
    smtp_sink: SMTPSink,
    clock,  # type: ignore[no-untyped-def]
) -> None:
    """A 5xx at RCPT while sending suppresses the address and sends "bounced" (with the delivery),
    as a provider's hard bounce and the soft-bounce limit do; the issue's end sends "issue.sent"."""
    endpoint(services, receiver, "/ops", "bounced", "issue.sent")
    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="b-1"))
        gone = add_subscriber(s, "gone@example.org", ["cardiology"], created_at=now).id
        add_subscriber(s, "here@example.org", ["cardiology"], created_at=now)
        issue_id = add_campaign(s, now, subject="Picks", pinned=["b-1"])
    send_issue(services, issue_id)

    assert [m["To"] for m in smtp_sink.messages] == ["here@example.org"]
    got = receiver.at("/ops")
    assert sorted(r.type for r in got) == ["bounced", "issue.sent"]
    assert all(r.verified and r.status == 204 for r in got)
    [bounced] = [r for r in got if r.type == "bounced"]
    assert bounced.subscriber_id == gone and bounced.body["data"]["email"] == "gone@example.org"
    assert "550" in bounced.body["data"]["detail"] and bounced.body["data"]["delivery_id"] is not None
    [sent] = [r for r in got if r.type == "issue.sent"]
    assert sent.body["data"]["issue"]["id"] == issue_id
    with session_scope(services.sessions) as s:
        entry = s.scalars(select(Suppression).where(Suppression.value == "gone@example.org")).one()
        assert entry.reason == SuppressionReason.HARD_BOUNCE

    # The same address bouncing again at a provider: already suppressed as bounced, nothing new.
    with session_scope(services.sessions) as s:
        record_events(s, [DeliveryEvent("postmark", "hb-1", EventKind.HARD_BOUNCE, "gone@example.org")], clock())
    assert len(receiver.at("/ops")) == 2

    # Soft bounces: the one that reaches the limit (3) suppresses and tells; the next tells nothing.
    with session_scope(services.sessions) as s:
        soft = add_subscriber(s, "soft@example.org", ["cardiology"], created_at=now).id
    for n in range(4):
        with session_scope(services.sessions) as s:
            event = DeliveryEvent(
                "postmark", f"sb-{n}", EventKind.SOFT_BOUNCE, "soft@example.org", detail="mailbox full"
            )
            record_events(s, [event], clock())
        assert [r.type for r in receiver.at("/ops")[2:]] == (["bounced"] if n >= 2 else [])
    [limit] = receiver.at("/ops")[2:]
    assert limit.subscriber_id == soft and "3 soft bounces" in limit.body["data"]["detail"]

    # A provider's hard bounce of an address not yet suppressed.
    with session_scope(services.sessions) as s:
        hard = add_subscriber(s, "hard@example.org", ["cardiology"], created_at=now).id
    with session_scope(services.sessions) as s:
        record_events(s, [DeliveryEvent("postmark", "hb-2", EventKind.HARD_BOUNCE, "hard@example.org")], clock())
    assert [(r.type, r.subscriber_id) for r in receiver.at("/ops")[3:]] == [("bounced", hard)]
    with session_scope(services.sessions) as s:
        assert (
            s.scalars(select(WebhookDelivery.status).where(WebhookDelivery.event == "bounced")).all()
            == [WebhookStatus.DELIVERED] * 3
        )
