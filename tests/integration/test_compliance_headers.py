"""Raw bytes of a sent digest: one of each unsubscribe header, a signed HTTPS URL, a DKIM signature
that verifies with dkimpy against the test key and covers the unsubscribe headers."""

from __future__ import annotations

import base64
import re
from datetime import timedelta
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest import dispatch
from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
DNS_RECORD = b"v=DKIM1; k=rsa; p=" + base64.b64encode(
    KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
)


def dns(name: bytes, timeout: int = 5) -> bytes:
    """The test's DNS: only the selector record of the test key exists."""
    return DNS_RECORD if name == b"sel2026._domainkey.news.example.org." else b""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(
        KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    settings.dkim_domain = "news.example.org"
    settings.dkim_selector = "sel2026"
    settings.dkim_key_file = key_file
    return settings


def _send_one(services: Services, smtp_sink: SMTPSink, clock: Clock) -> bytes:
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="c1", specialties=["cardiology"], published_at=days_before(clock(), 1)))
        add_subscriber(s, "cara@example.org", ["cardiology"], name="Cara Jones", created_at=clock() - timedelta(days=3))
    dispatch.send_due(services, clock())
    [received] = smtp_sink.received
    return received.raw


def _header_lines(raw: bytes) -> list[bytes]:
    head = raw.split(b"\r\n\r\n", 1)[0]
    return re.split(rb"\r\n(?![ \t])", head)


def test_raw_message_has_one_of_each_unsubscribe_header_and_a_valid_dkim_signature(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    raw = _send_one(services, smtp_sink, clock)
    lines = _header_lines(raw)
    names = [line.split(b":", 1)[0].lower() for line in lines]
    assert names.count(b"list-unsubscribe") == 1
    assert names.count(b"list-unsubscribe-post") == 1
    assert names.count(b"dkim-signature") == 1

    unsub = next(line for line in lines if line.lower().startswith(b"list-unsubscribe:")).decode()
    post = next(line for line in lines if line.lower().startswith(b"list-unsubscribe-post:")).decode()
    assert post == "List-Unsubscribe-Post: List-Unsubscribe=One-Click"
    https, mailto = re.findall(r"<([^>]+)>", unsub)
    assert https.startswith("https://digest.example.org/unsubscribe/")
    token = https.rsplit("/", 1)[1]
    subscriber_id = services.tokens.read(Purpose.UNSUBSCRIBE, token)  # signed, for this subscriber
    assert mailto == f"mailto:unsubscribe+{services.tokens.mailbox(subscriber_id)}@news.example.org?subject=unsubscribe"

    assert dkim.verify(raw, dnsfunc=dns)
    signature = b" ".join(next(line for line in lines if line.lower().startswith(b"dkim-signature:")).split())
    tags = re.search(rb"h=([^;]+)", signature)
    assert tags, signature
    signed = set(tags.group(1).replace(b" ", b"").lower().split(b":"))
    assert {
        b"from",
        b"to",
        b"subject",
        b"date",
        b"message-id",
        b"list-id",
        b"list-unsubscribe",
        b"list-unsubscribe-post",
    } <= signed
    assert b"d=news.example.org" in signature and b"s=sel2026" in signature


def test_dkim_breaks_when_an_unsubscribe_header_is_altered(
    services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    raw = _send_one(services, smtp_sink, clock)
    tampered = raw.replace(b"https://digest.example.org/unsubscribe/", b"https://evil.example.net/unsubscribe/", 1)
    assert tampered != raw
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_confirmation_emails_are_signed_too(web, services: Services, smtp_sink: SMTPSink) -> None:
    web.post("/subscribe", data={"email": "new@example.org", "specialties": ["cardiology"], "timezone": "UTC"})
    [received] = smtp_sink.received
    assert dkim.verify(received.raw, dnsfunc=dns)
