"""``POST /webhooks/ses``: SES bounce and complaint notifications delivered by SNS, signed with a
locally generated certificate served by a stand-in for SNS's certificate host. Only messages whose
signature verifies with a certificate from an SNS host change anything."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID
from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.config import Settings
from digest.db import session_scope
from digest.subscribers.models import Subscriber, SubscriberStatus, Suppression, SuppressionReason
from digest.wiring import Services, build_services
from tests.conftest import Clock
from tests.factories import add_subscriber

CERT_URL = "https://sns.eu-west-1.amazonaws.com/SimpleNotificationService-abc123.pem"
TOPIC = "arn:aws:sns:eu-west-1:123456789012:digest-ses-events"


class SNS:
    """Signs messages as SNS does, and stands in for the HTTPS URLs they name."""

    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "sns.amazonaws.com")])
        now = datetime.now(UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=30))
            .sign(self.key, hashes.SHA256())
        )
        self.pages = {CERT_URL: cert.public_bytes(serialization.Encoding.PEM)}
        self.fetched: list[str] = []

    def fetch(self, url: str) -> bytes:
        self.fetched.append(url)
        return self.pages.get(url, b"<ConfirmSubscriptionResponse/>")

    def sign(self, message: dict[str, Any], version: str = "2") -> dict[str, Any]:
        fields = (
            ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type")
            if message["Type"] == "Notification"
            else ("Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type")
        )
        canonical = "".join(f"{f}\n{message[f]}\n" for f in fields if f in message)
        algorithm = hashes.SHA256() if version == "2" else hashes.SHA1()
        signature = self.key.sign(canonical.encode(), padding.PKCS1v15(), algorithm)
        return {
            **message,
            "SignatureVersion": version,
            "Signature": base64.b64encode(signature).decode(),
            "SigningCertURL": message.get("SigningCertURL", CERT_URL),
        }


def notification(payload: dict[str, Any], n: int = 1) -> dict[str, Any]:
    return {
        "Type": "Notification",
        "MessageId": f"sns-{n}",
        "TopicArn": TOPIC,
        "Message": json.dumps(payload),
        "Timestamp": "2026-11-27T12:00:00.000Z",
    }


def bounce(email: str, bounce_type: str = "Permanent") -> dict[str, Any]:
    return {
        "notificationType": "Bounce",
        "bounce": {
            "bounceType": bounce_type,
            "bounceSubType": "General",
            "bouncedRecipients": [{"emailAddress": email, "status": "5.1.1", "diagnosticCode": "smtp; 550 5.1.1"}],
            "feedbackId": f"fb-{email}-{bounce_type}",
            "timestamp": "2026-11-27T12:00:00.000Z",
        },
        "mail": {"messageId": "0102019abc-000000"},
    }


@pytest.fixture
def sns() -> SNS:
    return SNS()


@pytest.fixture
def client(settings: Settings, clock: Clock, sns: SNS) -> Iterator[tuple[TestClient, Services]]:
    from digest.web.app import create_app

    svc = build_services(settings.model_copy(update={"ses_topic_arn": TOPIC}), clock=clock, fetch_url=sns.fetch)
    with TestClient(create_app(svc), follow_redirects=False) as web:
        yield web, svc
    svc.close()


def _suppressed(svc: Services) -> dict[str, str]:
    with session_scope(svc.sessions) as s:
        return dict(s.execute(select(Suppression.value, Suppression.reason)).all())


def _post(web: TestClient, message: dict[str, Any]) -> int:
    headers = {"x-amz-sns-message-type": message["Type"], "content-type": "text/plain; charset=UTF-8"}
    return web.post("/webhooks/ses", content=json.dumps(message), headers=headers).status_code


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_permanent_bounce_suppresses_the_address(
    client: tuple[TestClient, Services], sns: SNS, version: str
) -> None:
    web, svc = client
    assert _post(web, sns.sign(notification(bounce("gone@example.org")), version)) == 200
    assert _suppressed(svc) == {"gone@example.org": SuppressionReason.HARD_BOUNCE}
    assert sns.fetched == [CERT_URL]


def test_a_complaint_suppresses_and_unsubscribes(client: tuple[TestClient, Services], sns: SNS, clock: Clock) -> None:
    web, svc = client
    with session_scope(svc.sessions) as s:
        add_subscriber(s, "annoyed@example.org", ["cardiology"])
    complaint = {
        "notificationType": "Complaint",
        "complaint": {"complainedRecipients": [{"emailAddress": "annoyed@example.org"}], "feedbackId": "c-1"},
        "mail": {"messageId": "0102019abc-000001"},
    }
    assert _post(web, sns.sign(notification(complaint))) == 200
    assert _suppressed(svc) == {"annoyed@example.org": SuppressionReason.COMPLAINT}
    with session_scope(svc.sessions) as s:
        status = s.scalar(select(Subscriber.status).where(Subscriber.email == "annoyed@example.org"))
    assert status == SubscriberStatus.UNSUBSCRIBED


def test_a_transient_bounce_is_only_counted(client: tuple[TestClient, Services], sns: SNS) -> None:
    web, svc = client
    assert _post(web, sns.sign(notification(bounce("full@example.org", "Transient")))) == 200
    assert _suppressed(svc) == {}


def test_forged_or_foreign_messages_change_nothing(client: tuple[TestClient, Services], sns: SNS) -> None:
    web, svc = client
    signed = sns.sign(notification(bounce("victim@example.org")))
    tampered = {**signed, "Message": json.dumps(bounce("other@example.org"))}
    assert _post(web, tampered) == 401
    elsewhere = "https://sns.eu-west-1.amazonaws.com.evil.example/cert.pem"
    sns.pages[elsewhere] = sns.pages[CERT_URL]
    assert _post(web, sns.sign({**notification(bounce("victim@example.org")), "SigningCertURL": elsewhere})) == 401
    assert elsewhere not in sns.fetched  # never fetched from a host that is not SNS's
    other_topic = {**notification(bounce("victim@example.org")), "TopicArn": "arn:aws:sns:eu-west-1:999:other"}
    assert _post(web, sns.sign(other_topic)) == 401
    assert _suppressed(svc) == {}


def test_a_subscription_is_confirmed_through_its_subscribe_url(client: tuple[TestClient, Services], sns: SNS) -> None:
    web, _ = client
    subscribe = "https://sns.eu-west-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=x&Token=t"
    confirmation = {
        "Type": "SubscriptionConfirmation",
        "MessageId": "sub-1",
        "Token": "t",
        "TopicArn": TOPIC,
        "Message": "You have chosen to subscribe to the topic.",
        "SubscribeURL": subscribe,
        "Timestamp": "2026-11-27T12:00:00.000Z",
    }
    assert _post(web, sns.sign(confirmation)) == 200
    assert subscribe in sns.fetched
