"""SendGrid: the v3 mail send transport, and its Event Webhook (ECDSA-signed) and Inbound Parse.

Sending: ``POST {api_url}/v3/mail/send``, one message per request. The v3 API takes JSON, not raw
MIME: one personalization (the recipient, and the delivery id as a custom arg so webhook events
find their row), the subject, a text/plain and a text/html content
part, and the digest headers (Message-ID, List-Id, List-Unsubscribe, List-Unsubscribe-Post) in
``headers``. SendGrid answers ``202 Accepted`` with an empty body and the ``X-Message-Id`` header;
a refused message answers 400 with ``{"errors": [{"message", "field", "help"}]}``.

The Event Webhook posts a JSON array of events, signed: ``X-Twilio-Email-Event-Webhook-Signature``
is the base64 DER ECDSA P-256 signature over SHA-256 of the
``X-Twilio-Email-Event-Webhook-Timestamp`` header value followed by the raw body; the public key
from SendGrid's settings is base64 DER (SubjectPublicKeyInfo), PEM is accepted too. Events:
``bounce`` (``type`` "bounce" or "blocked"), ``dropped`` (with a ``reason``), ``spamreport``,
``unsubscribe`` and ``group_unsubscribe``; each has ``sg_event_id``, ``sg_message_id``, ``email``
and ``timestamp``. Inbound Parse (for the mailto unsubscribe) posts multipart form fields ``to`` and
``envelope``."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from email.utils import getaddresses, parseaddr
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from digest.config import Settings
from digest.delivery.http import api_session, post_json, probe_get, raise_for_request
from digest.delivery.transport import Failure, SendResult, TransientError, Transport
from digest.events.delivery_event import (
    DeliveryEvent,
    EventKind,
    InvalidPayload,
    fallback_event_id,
    load_json,
    parse_time,
)
from digest.providers import NotVerified, Provider, ProviderConfigError, WebhookCall
from digest.rendering.message import OutgoingMessage

NAME = "sendgrid"


# ---------------------------------------------------------------------------------------------
# Sending

SENDGRID_API_URL = "https://api.sendgrid.com"


class SendGridTransport:
    name = NAME
    wants_raw = False  # the API takes fields; raw MIME would be ignored
    batch_size = 1

    def __init__(self, token: str, *, api_url: str = SENDGRID_API_URL, backoff: float = 0.5):
        self.url = api_url.rstrip("/") + "/v3/mail/send"
        self.probe_url = api_url.rstrip("/") + "/v3/scopes"
        self.session = api_session({"Authorization": f"Bearer {token}"}, backoff=backoff)

    def payload(self, msg: OutgoingMessage) -> dict[str, Any]:
        from_name, from_email = parseaddr(msg.from_header)
        return {
            "personalizations": [
                {"to": [_address(msg.to_email, msg.to_name)], "custom_args": {"delivery_id": str(msg.delivery_id)}}
            ],
            "from": _address(from_email, from_name),
            "subject": msg.subject,
            "content": [{"type": "text/plain", "value": msg.text}, {"type": "text/html", "value": msg.html}],
            "headers": {"Message-ID": msg.message_id, **dict(msg.headers)},
            "tracking_settings": {"click_tracking": {"enable": False}, "open_tracking": {"enable": False}},
        }

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return [self._send_one(msg) for msg in messages]

    def _send_one(self, msg: OutgoingMessage) -> SendResult:
        response = post_json(self.session, self.url, self.payload(msg), "SendGrid")
        raise_for_request(response, "SendGrid")
        if response.status_code in (200, 202):
            return SendResult.ok(msg.delivery_id, provider_id=response.headers.get("X-Message-Id") or msg.message_id)
        if response.status_code in (400, 413):
            errors = _errors(response)
            bad_address = any(str(e.get("field") or "").startswith("personalizations.0.to") for e in errors)
            detail = "; ".join(f"{e.get('field') or 'request'}: {e.get('message', '')}" for e in errors)
            error = f"SendGrid refused the message (HTTP {response.status_code}): {detail or response.text[:300]}"
            return SendResult.failed(msg.delivery_id, error, Failure.RECIPIENT if bad_address else Failure.MESSAGE)
        raise TransientError(f"SendGrid answered HTTP {response.status_code}: {response.text[:300]}")

    def probe(self) -> None:
        """``GET /v3/scopes``: answers 200 with the key's scopes while the key works."""
        probe_get(self.session, self.probe_url, "SendGrid")

    def close(self) -> None:
        self.session.close()


def _address(email: str, name: str) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def _errors(response: Any) -> list[dict[str, Any]]:
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        return []
    return [e for e in errors if isinstance(e, dict)]


# ---------------------------------------------------------------------------------------------
# Webhooks


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
        NAME, event_id, kind, email.strip().lower(), message_ids, parse_time(record.get("timestamp")), detail
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


# ---------------------------------------------------------------------------------------------
# Registration


def _transport(settings: Settings) -> Transport:
    if not settings.api_token:
        raise ProviderConfigError("DIGEST_TRANSPORT=sendgrid needs DIGEST_API_TOKEN (the API key)")
    return SendGridTransport(settings.api_token, api_url=settings.api_url or SENDGRID_API_URL)


def _signed_recently(headers: Mapping[str, str], settings: Settings, now: datetime) -> None:
    if not signed_recently(headers.get(TIMESTAMP_HEADER.lower()), now):
        raise NotVerified("the signature's timestamp is missing or too old")


def _events(call: WebhookCall) -> list[DeliveryEvent]:
    key = call.settings.sendgrid_webhook_public_key
    signature = call.headers.get(SIGNATURE_HEADER.lower())
    timestamp = call.headers.get(TIMESTAMP_HEADER.lower())
    if not verify(key, call.body, signature, timestamp):
        raise NotVerified("signature did not verify" if key else "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    return parse(call.body)


def _inbound(call: WebhookCall) -> list[str]:
    return inbound_recipients(dict(call.form))


PROVIDER = Provider(NAME, _transport, precheck=_signed_recently, events=_events, inbound=_inbound)
