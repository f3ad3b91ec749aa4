"""Provider webhooks with real credentials and signatures (and bad ones), and the mailto unsubscribe."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.events.models import WebhookEvent
from digest.ledger.models import Delivery, DeliveryStatus, Issue, IssueStatus
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression
from digest.wiring import Services
from tests.factories import add_subscriber

SENDGRID_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.fixture
def settings(settings: Settings) -> Settings:
    settings.postmark_webhook_user = "hook"
    settings.postmark_webhook_password = "s3cret"
    der = SENDGRID_KEY.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    settings.sendgrid_webhook_public_key = base64.b64encode(der).decode()  # as SendGrid's settings page shows it
    return settings


def _basic(user: str, password: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _signed(
    payload: bytes, key: ec.EllipticCurvePrivateKey = SENDGRID_KEY, timestamp: str = "1764241200"
) -> dict[str, str]:
    signature = key.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))
    return {
        "Content-Type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": base64.b64encode(signature).decode(),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def _sent_delivery(services: Services, email: str, provider_id: str) -> tuple[int, int]:
    with session_scope(services.sessions) as s:
        sub = add_subscriber(s, email, ["cardiology"])
        issue = Issue(subject="x", status=IssueStatus.SENT)
        s.add(issue)
        s.flush()
        delivery = Delivery(
            issue_id=issue.id, subscriber_id=sub.id, status=DeliveryStatus.SENT, provider_message_id=provider_id
        )
        s.add(delivery)
        s.flush()
        return sub.id, delivery.id


def _state(services: Services) -> dict[str, Any]:
    with session_scope(services.sessions) as s:
        return {
            "suppressed": {r.value: r.reason for r in s.scalars(select(Suppression))},
            "subscribers": {r.email: r.status for r in s.scalars(select(Subscriber))},
            "deliveries": {d.id: d.status for d in s.scalars(select(Delivery))},
            "events": [
                (e.provider, e.kind, e.delivery_id) for e in s.scalars(select(WebhookEvent).order_by(WebhookEvent.id))
            ],
        }


POSTMARK_BOUNCE = {
    "RecordType": "Bounce",
    "ID": 4323372036854775807,
    "Type": "HardBounce",
    "TypeCode": 1,
    "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
    "Email": "Bounced@Example.org",
    "BouncedAt": "2026-11-27T10:00:00Z",
    "Inactive": True,
    "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
}


def test_postmark_hard_bounce_suppresses_and_fails_the_delivery(web: TestClient, services: Services) -> None:
    _, delivery_id = _sent_delivery(services, "bounced@example.org", POSTMARK_BOUNCE["MessageID"])
    response = web.post("/webhooks/postmark", json=POSTMARK_BOUNCE, headers=_basic("hook", "s3cret"))
    assert response.status_code == 200 and response.json() == {"processed": 1, "duplicates": 0}
    state = _state(services)
    assert state["suppressed"] == {"bounced@example.org": "hard_bounce"}
    assert state["deliveries"][delivery_id] == DeliveryStatus.FAILED
    assert state["events"] == [("postmark", "hard_bounce", delivery_id)]
    # Postmark retries: the same event again changes nothing.
    again = web.post("/webhooks/postmark", json=POSTMARK_BOUNCE, headers=_basic("hook", "s3cret"))
    assert again.json() == {"processed": 0, "duplicates": 1}
    assert len(_state(services)["events"]) == 1


def test_postmark_spam_complaint_and_subscription_change_unsubscribe(web: TestClient, services: Services) -> None:
    _sent_delivery(services, "angry@example.org", "m-1")
    _sent_delivery(services, "leaver@example.org", "m-2")
    complaint = {
        **POSTMARK_BOUNCE,
        "RecordType": "SpamComplaint",
        "ID": 1,
        "Type": "SpamComplaint",
        "Email": "angry@example.org",
        "MessageID": "m-1",
    }
    change = {
        "RecordType": "SubscriptionChange",
        "MessageID": "m-2",
        "ServerID": 23,
        "MessageStream": "broadcast",
        "ChangedAt": "2026-11-27T11:00:00Z",
        "Recipient": "leaver@example.org",
        "Origin": "Recipient",
        "SuppressSending": True,
        "SuppressionReason": "ManualSuppression",
    }
    for payload in (complaint, change):
        assert web.post("/webhooks/postmark", json=payload, headers=_basic("hook", "s3cret")).status_code == 200
    state = _state(services)
    assert state["suppressed"] == {"angry@example.org": "complaint", "leaver@example.org": "unsubscribed"}
    assert state["subscribers"] == {
        "angry@example.org": SubscriberStatus.UNSUBSCRIBED,
        "leaver@example.org": SubscriberStatus.UNSUBSCRIBED,
    }


@pytest.mark.parametrize(
    "headers",
    [
        {},
        _basic("hook", "wrong"),
        _basic("other", "s3cret"),
        {"Authorization": "Bearer s3cret"},
        {"Authorization": "Basic %%%"},
    ],
)
def test_postmark_bad_credentials_get_401_and_change_nothing(
    web: TestClient, services: Services, headers: dict[str, str]
) -> None:
    _sent_delivery(services, "bounced@example.org", POSTMARK_BOUNCE["MessageID"])
    before = _state(services)
    response = web.post("/webhooks/postmark", json=POSTMARK_BOUNCE, headers=headers)
    assert response.status_code == 401
    assert _state(services) == before


SENDGRID_EVENTS = [
    {
        "email": "hard@example.org",
        "timestamp": 1764241000,
        "event": "bounce",
        "type": "bounce",
        "reason": "550 5.1.1 unknown user",
        "status": "5.1.1",
        "sg_event_id": "ev-bounce-1",
        "sg_message_id": "XmsgHard.filterdrecv-1.2.3",
    },
    {
        "email": "soft@example.org",
        "timestamp": 1764241001,
        "event": "bounce",
        "type": "blocked",
        "reason": "421 try later",
        "sg_event_id": "ev-blocked-1",
        "sg_message_id": "XmsgSoft.filter-9",
    },
    {
        "email": "spam@example.org",
        "timestamp": 1764241002,
        "event": "spamreport",
        "sg_event_id": "ev-spam-1",
        "sg_message_id": "XmsgSpam.f",
    },
    {
        "email": "unsub@example.org",
        "timestamp": 1764241003,
        "event": "unsubscribe",
        "sg_event_id": "ev-unsub-1",
        "sg_message_id": "XmsgUnsub.f",
    },
    {
        "email": "drop@example.org",
        "timestamp": 1764241004,
        "event": "dropped",
        "reason": "Bounced Address",
        "sg_event_id": "ev-drop-1",
        "sg_message_id": "XmsgDrop.f",
    },
    {
        "email": "hard@example.org",
        "timestamp": 1764241005,
        "event": "delivered",
        "sg_event_id": "ev-delivered-1",
        "sg_message_id": "XmsgHard.f",
    },
]


def test_sendgrid_signed_events_are_applied(web: TestClient, services: Services) -> None:
    ids = {
        e: _sent_delivery(services, f"{e}@example.org", f"Xmsg{e.capitalize()}")[1]
        for e in ("hard", "soft", "spam", "unsub", "drop")
    }
    payload = json.dumps(SENDGRID_EVENTS).encode()
    response = web.post("/webhooks/sendgrid", content=payload, headers=_signed(payload))
    assert response.status_code == 200 and response.json() == {"processed": 5, "duplicates": 0}
    state = _state(services)
    assert state["suppressed"] == {
        "hard@example.org": "hard_bounce",
        "spam@example.org": "complaint",
        "unsub@example.org": "unsubscribed",
        "drop@example.org": "hard_bounce",
    }
    assert (
        state["subscribers"]["spam@example.org"]
        == state["subscribers"]["unsub@example.org"]
        == SubscriberStatus.UNSUBSCRIBED
    )
    assert state["subscribers"]["soft@example.org"] == SubscriberStatus.ACTIVE
    assert state["deliveries"][ids["hard"]] == state["deliveries"][ids["drop"]] == DeliveryStatus.FAILED
    assert state["deliveries"][ids["soft"]] == DeliveryStatus.SENT
    assert ("sendgrid", "hard_bounce", ids["hard"]) in state["events"]  # linked through sg_message_id
    again = web.post("/webhooks/sendgrid", content=payload, headers=_signed(payload, timestamp="1764241999"))
    assert again.json() == {"processed": 0, "duplicates": 5}


def test_sendgrid_bad_signatures_get_401_and_change_nothing(web: TestClient, services: Services) -> None:
    _sent_delivery(services, "hard@example.org", "XmsgHard")
    payload = json.dumps(SENDGRID_EVENTS[:1]).encode()
    tampered = payload.replace(b"hard@", b"else@")
    good = _signed(payload)
    attempts = [
        (payload, _signed(payload, key=OTHER_KEY)),  # signed with another key
        (tampered, good),  # body changed after signing
        (payload, {**good, "X-Twilio-Email-Event-Webhook-Timestamp": "1764241201"}),  # timestamp changed
        (payload, {"Content-Type": "application/json"}),  # unsigned
        (payload, {**good, "X-Twilio-Email-Event-Webhook-Signature": "bm90IGEgc2lnbmF0dXJl"}),  # garbage
    ]
    before = _state(services)
    for body, headers in attempts:
        assert web.post("/webhooks/sendgrid", content=body, headers=headers).status_code == 401
    assert _state(services) == before


def test_malformed_but_authentic_payloads_get_400(web: TestClient) -> None:
    body = b'{"not": "a list"}'
    assert web.post("/webhooks/sendgrid", content=body, headers=_signed(body)).status_code == 400
    assert web.post("/webhooks/postmark", content=b"not json", headers=_basic("hook", "s3cret")).status_code == 400


def test_mailto_unsubscribe_through_inbound_webhooks(web: TestClient, services: Services) -> None:
    with session_scope(services.sessions) as s:
        a = add_subscriber(s, "a@example.org", ["cardiology"]).id
        b = add_subscriber(s, "b@example.org", ["cardiology"]).id
        add_subscriber(s, "c@example.org", ["cardiology"])
    domain = services.settings.from_domain
    postmark_mail = {
        "From": "a@example.org",
        "OriginalRecipient": f"unsubscribe+{services.tokens.mailbox(a).upper()}@{domain}",  # case changed in transit
        "ToFull": [
            {
                "Email": f"unsubscribe+{services.tokens.mailbox(a)}@{domain}",
                "Name": "",
                "MailboxHash": services.tokens.mailbox(a),
            }
        ],
        "Subject": "unsubscribe",
    }
    assert web.post("/webhooks/postmark/inbound", json=postmark_mail).status_code == 401  # credentials still needed
    response = web.post("/webhooks/postmark/inbound", json=postmark_mail, headers=_basic("hook", "s3cret"))
    assert response.json() == {"unsubscribed": 1}
    envelope = json.dumps({"to": [f"unsubscribe+{services.tokens.mailbox(b)}@{domain}"], "from": "b@example.org"})
    forged = f"unsubscribe+{services.tokens.mailbox(b).replace(f'{b}-', '3-')}@{domain}"
    response = web.post(
        "/webhooks/sendgrid/inbound",
        files={"envelope": (None, envelope), "to": (None, forged), "subject": (None, "unsubscribe")},
    )
    assert response.json() == {"unsubscribed": 1}
    assert _state(services)["subscribers"] == {
        "a@example.org": SubscriberStatus.UNSUBSCRIBED,
        "b@example.org": SubscriberStatus.UNSUBSCRIBED,
        "c@example.org": SubscriberStatus.ACTIVE,
    }


forged_headers = st.fixed_dictionaries(
    {},
    optional={
        "Authorization": st.one_of(
            st.just("Basic " + base64.b64encode(b"hook:wrong").decode()),
            st.text(max_size=40).map(lambda t: "Basic " + t),
        ),
        "X-Twilio-Email-Event-Webhook-Signature": st.one_of(
            st.binary(max_size=72).map(lambda b: base64.b64encode(b).decode()), st.text(max_size=20)
        ),
        "X-Twilio-Email-Event-Webhook-Timestamp": st.integers(0, 2**40).map(str),
    },
).map(lambda h: {k: v for k, v in h.items() if v.isascii() and "\n" not in v and "\r" not in v})
payloads = st.one_of(
    st.binary(max_size=200),
    st.just(json.dumps(SENDGRID_EVENTS).encode()),
    st.just(json.dumps(POSTMARK_BOUNCE).encode()),
)


@examples(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(provider=st.sampled_from(["postmark", "sendgrid"]), body=payloads, headers=forged_headers)
def test_any_unauthenticated_webhook_changes_nothing(
    web: TestClient, services: Services, provider: str, body: bytes, headers: dict[str, str]
) -> None:
    if not _state(services)["subscribers"]:
        _sent_delivery(services, "hard@example.org", "XmsgHard")
        _sent_delivery(services, "Bounced@Example.org", POSTMARK_BOUNCE["MessageID"])
    before = _state(services)
    assert (
        web.post(
            f"/webhooks/{provider}", content=body, headers={"Content-Type": "application/json", **headers}
        ).status_code
        == 401
    )
    assert _state(services) == before
