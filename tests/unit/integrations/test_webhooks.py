"""Outgoing webhooks in one process (no broker: the sender runs right after the commit that
emitted the events): signatures a Standard Webhooks library accepts, only the endpoints listening
for an event get it, per-subscriber order even while an earlier event is being retried, retries
with backoff until the event is marked failed, and the operator's views of it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.events.delivery_event import DeliveryEvent, EventKind
from digest.events.service import record_events
from digest.integrations.models import WebhookDelivery, WebhookEndpoint, WebhookStatus
from digest.integrations.webhooks import new_secret, sign
from digest.rights import find_subscriber
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.factories import add_subscriber
from tests.webhook_receiver import WebhookReceiver


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
