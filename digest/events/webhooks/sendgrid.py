"""SendGrid: the Event Webhook (a JSON array of events), signed with ECDSA P-256.

Signature: ``X-Twilio-Email-Event-Webhook-Signature`` is the base64 DER ECDSA signature over
SHA-256 of the ``X-Twilio-Email-Event-Webhook-Timestamp`` header value followed by the raw body;
the public key from SendGrid's settings is base64 DER (SubjectPublicKeyInfo), PEM is accepted too.
Events: ``bounce`` (``type`` "bounce" or "blocked"), ``dropped`` (with a ``reason``), ``spamreport``,
``unsubscribe`` and ``group_unsubscribe``; each has ``sg_event_id``, ``sg_message_id``, ``email`` and
``timestamp``. Inbound Parse (for the mailto unsubscribe) posts multipart form fields ``to`` and
``envelope``.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.events.webhooks.event import (
    DeliveryEvent,
    EventKind,
    InvalidPayload,
    fallback_event_id,
    load_json,
    parse_time,
)

PROVIDER = "sendgrid"
SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
DROPPED_REASONS = {
    "bounced address": EventKind.HARD_BOUNCE,
    "invalid": EventKind.HARD_BOUNCE,
    "spam reporting address": EventKind.COMPLAINT,
    "unsubscribed address": EventKind.UNSUBSCRIBE,
}


def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """The verification key as SendGrid shows it (base64 DER) or as PEM."""
    try:
        if "BEGIN PUBLIC KEY" in value:
            key = serialization.load_pem_public_key(value.encode())
        else:
            key = serialization.load_der_public_key(base64.b64decode(value.strip()))
    except (ValueError, binascii.Error) as exc:
        raise ValueError(f"DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not a public key: {exc}") from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY must be an ECDSA (P-256) public key")
    return key


# A signed request is accepted for this long after its timestamp (and as long before, for clock
# skew): a captured request cannot be replayed later (SendGrid retries with a fresh signature).
MAX_AGE = timedelta(minutes=10)


def signed_recently(timestamp: str | None, now: datetime) -> bool:
    """The signature's timestamp (Unix seconds) is within ``MAX_AGE`` of ``now``."""
    try:
        signed_at = datetime.fromtimestamp(int(timestamp or ""), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return False
    return abs(now - signed_at) <= MAX_AGE


def verify(public_key: str | None, body: bytes, signature: str | None, timestamp: str | None) -> bool:
    if not public_key or not signature or not timestamp:
        return False
    try:
        key = load_public_key(public_key)
        key.verify(base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256()))
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


def parse(body: bytes) -> list[DeliveryEvent]:
    records = load_json(body)
    if not isinstance(records, list):
        raise InvalidPayload("expected a JSON array of events")
    events = []
    for number, record in enumerate(records, start=1):
        if not isinstance(record, dict):
            raise InvalidPayload(f"event {number} is not an object")
        event = _event(record, number)
        if event is not None:
            events.append(event)
    return events


def _event(record: dict[str, Any], number: int) -> DeliveryEvent | None:
    name = record.get("event")
    reason = str(record.get("reason") or "")
    if name == "bounce":
        kind = EventKind.SOFT_BOUNCE if record.get("type") == "blocked" else EventKind.HARD_BOUNCE
    elif name == "dropped":
        kind = DROPPED_REASONS.get(reason.strip().lower(), EventKind.DROPPED)
    elif name == "spamreport":
        kind = EventKind.COMPLAINT
    elif name in ("unsubscribe", "group_unsubscribe"):
        kind = EventKind.UNSUBSCRIBE
    else:
        return None  # processed, delivered, open, click, deferred: nothing to act on
    email = record.get("email")
    if not isinstance(email, str) or "@" not in email:
        raise InvalidPayload(f"event {number}: field 'email' must be an email address")
    sg_id = str(record.get("sg_message_id") or "")
    # sg_message_id is the X-Message-Id the send returned plus ".filter..." suffixes.
    message_ids = tuple(dict.fromkeys(m for m in (sg_id, sg_id.split(".", 1)[0]) if m))
    event_id = str(record.get("sg_event_id") or fallback_event_id(record))
    detail = " ".join(p for p in (str(name), reason, str(record.get("status") or "")) if p)
    return DeliveryEvent(
        PROVIDER, event_id, kind, email.strip().lower(), message_ids, parse_time(record.get("timestamp")), detail
    )


def inbound_recipients(form: dict[str, str]) -> list[str]:
    """The addresses an inbound mail was sent to (Inbound Parse's ``envelope`` and ``to`` fields)."""
    found: list[str] = []
    try:
        envelope = json.loads(form.get("envelope") or "{}")
    except json.JSONDecodeError:
        envelope = {}
    if isinstance(envelope, dict):
        found += [a for a in envelope.get("to") or [] if isinstance(a, str)]
    found += [addr for _, addr in getaddresses([form.get("to", "")]) if addr]
    return found
