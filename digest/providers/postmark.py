"""Postmark: the batch API transport, and its webhooks (bounces, spam complaints, subscription
changes, inbound mail), authenticated by HTTP basic auth.

Sending: ``POST {api_url}/email/batch``, up to 500 messages per call. Postmark takes JSON fields,
not raw MIME, so each message is mapped onto From/To/Subject/TextBody/HtmlBody and its headers
(Message-ID, List-Id, List-Unsubscribe, List-Unsubscribe-Post) go in ``Headers``. The batch answers
200 with one result per message, in request order, each with an ``ErrorCode`` (0 = accepted, with
Postmark's ``MessageID``); a whole-request problem answers 401, 422, 429 or 5xx. The messages go to
the broadcast message stream; link and open tracking stay off so that the unsubscribe links reach
readers as rendered.

Webhooks (https://postmarkapp.com/developer/webhooks): a Bounce has ``RecordType: "Bounce"``,
``ID``, ``Type`` (HardBounce, SoftBounce, ...), ``MessageID``, ``Email``, ``BouncedAt``,
``Inactive``; a SpamComplaint has the same shape with ``RecordType: "SpamComplaint"``; a
SubscriptionChange has ``MessageID``, ``Recipient``, ``SuppressSending``, ``SuppressionReason``
(HardBounce, SpamComplaint, ManualSuppression) and ``ChangedAt``, but no id of its own. Inbound mail
(for the mailto unsubscribe) arrives as JSON with ``OriginalRecipient`` and ``ToFull``."""

from __future__ import annotations

import base64
import binascii
import hmac
import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from email.utils import formataddr
from typing import Any

from digest.config import Settings
from digest.delivery.http import api_session, post_json, probe_get, raise_for_request
from digest.delivery.transport import ConnectionFailure, Failure, SendResult, TransientError, Transport
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

NAME = "postmark"


# ---------------------------------------------------------------------------------------------
# Sending

POSTMARK_API_URL = "https://api.postmarkapp.com"
MAX_BATCH = 500
MAX_BATCH_BYTES = 45 * 1024 * 1024  # Postmark accepts 50 MB per batch call
MESSAGE_STREAM = "broadcast"

INACTIVE_RECIPIENT = 406  # hard bounced, complained or unsubscribed at Postmark: suppress here too
# Account-level states an operator can fix: not allowed to send (out of credits, suspended), account
# pending approval, sender signature not confirmed. No message is to blame.
ACCOUNT_CODES = frozenset({400, 405, 412})
RATE_LIMITED = 429


class PostmarkTransport:
    name = NAME
    wants_raw = False  # the API takes fields; raw MIME would be ignored
    batch_size = MAX_BATCH

    def __init__(
        self, token: str, *, api_url: str = POSTMARK_API_URL, stream: str = MESSAGE_STREAM, backoff: float = 0.5
    ):
        self.url = api_url.rstrip("/") + "/email/batch"
        self.probe_url = api_url.rstrip("/") + "/server"
        self.stream = stream
        self.session = api_session({"X-Postmark-Server-Token": token}, backoff=backoff)

    def payload(self, msg: OutgoingMessage) -> dict[str, Any]:
        return {
            "From": msg.from_header,
            "To": formataddr((msg.to_name, msg.to_email)),
            "Subject": msg.subject,
            "TextBody": msg.text,
            "HtmlBody": msg.html,
            "Headers": [{"Name": "Message-ID", "Value": msg.message_id}]
            + [{"Name": name, "Value": value} for name, value in msg.headers],
            "MessageStream": self.stream,
            "TrackOpens": False,
            "TrackLinks": "None",
            "Metadata": {"delivery_id": str(msg.delivery_id)},
        }

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for batch, payloads in self._requests(messages):
            results.extend(self._send_batch(batch, payloads))
        return results

    def _requests(
        self, messages: Sequence[OutgoingMessage]
    ) -> Iterator[tuple[list[OutgoingMessage], list[dict[str, Any]]]]:
        """Split into calls of at most 500 messages and 45 MB of JSON."""
        batch: list[OutgoingMessage] = []
        payloads: list[dict[str, Any]] = []
        size = 0
        for msg in messages:
            payload = self.payload(msg)
            length = len(json.dumps(payload).encode())
            if batch and (len(batch) == MAX_BATCH or size + length > MAX_BATCH_BYTES):
                yield batch, payloads
                batch, payloads, size = [], [], 0
            batch.append(msg)
            payloads.append(payload)
            size += length
        if batch:
            yield batch, payloads

    def _send_batch(self, batch: list[OutgoingMessage], payloads: list[dict[str, Any]]) -> list[SendResult]:
        response = post_json(self.session, self.url, payloads, "Postmark")
        raise_for_request(response, "Postmark")
        if response.status_code == 422:
            # The whole call was refused (malformed request, unverified sender, ...): nothing was sent.
            raise ConnectionFailure(f"Postmark refused the batch: {_error_text(response.json())}")
        if response.status_code != 200:
            raise TransientError(f"Postmark answered HTTP {response.status_code}: {response.text[:300]}")
        answers = response.json()
        if not isinstance(answers, list) or len(answers) != len(batch):
            raise TransientError(
                f"Postmark answered {len(answers) if isinstance(answers, list) else 'no list'} results "
                f"for {len(batch)} messages"
            )
        return [_result(msg, answer) for msg, answer in zip(batch, answers, strict=True)]

    def probe(self) -> None:
        """``GET /server``: answers 200 with the server's settings while the token works."""
        probe_get(self.session, self.probe_url, "Postmark")

    def close(self) -> None:
        self.session.close()


def _error_text(answer: dict[str, Any]) -> str:
    return f"ErrorCode {answer.get('ErrorCode')}: {answer.get('Message', '')}".strip()


def _result(msg: OutgoingMessage, answer: dict[str, Any]) -> SendResult:
    code = int(answer.get("ErrorCode", -1))
    if code == 0:
        return SendResult.ok(msg.delivery_id, provider_id=str(answer["MessageID"]))
    error = f"Postmark {_error_text(answer)}"
    if code in ACCOUNT_CODES:
        return SendResult.failed(msg.delivery_id, error, Failure.CONNECTION)
    if code == RATE_LIMITED:
        return SendResult.failed(msg.delivery_id, error, Failure.THROTTLED)
    return SendResult.failed(
        msg.delivery_id, error, Failure.RECIPIENT if code == INACTIVE_RECIPIENT else Failure.MESSAGE
    )


# ---------------------------------------------------------------------------------------------
# Webhooks


HARD_TYPES = frozenset({"HardBounce", "BadEmailAddress", "ManuallyDeactivated", "DnsError"})
SUPPRESSION_KINDS = {
    "HardBounce": EventKind.HARD_BOUNCE,
    "SpamComplaint": EventKind.COMPLAINT,
    "ManualSuppression": EventKind.UNSUBSCRIBE,
}


def verify(authorization: str | None, user: str | None, password: str | None) -> bool:
    """True when the Authorization header carries the configured basic-auth credentials."""
    if not user or not password or not authorization:
        return False
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return False
    try:
        given = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    return hmac.compare_digest(given, f"{user}:{password}".encode())


def parse(body: bytes) -> list[DeliveryEvent]:
    """One webhook call carries one record; records we do not act on give no event."""
    record = load_json(body)
    if not isinstance(record, dict):
        raise InvalidPayload("expected one JSON object")
    event = _event(record)
    return [event] if event else []


def _event(record: dict[str, Any]) -> DeliveryEvent | None:
    kind_name = record.get("RecordType")
    message_ids = (str(record["MessageID"]),) if record.get("MessageID") else ()
    if kind_name in ("Bounce", "SpamComplaint"):
        email = _email(record, "Email")
        bounce_type = str(record.get("Type", ""))
        if kind_name == "SpamComplaint" or bounce_type == "SpamComplaint":
            kind = EventKind.COMPLAINT
        elif bounce_type == "Unsubscribe":
            kind = EventKind.UNSUBSCRIBE
        elif bounce_type in HARD_TYPES or record.get("Inactive") is True:
            kind = EventKind.HARD_BOUNCE
        else:
            kind = EventKind.SOFT_BOUNCE
        event_id = f"{kind_name}:{record['ID']}" if record.get("ID") is not None else fallback_event_id(record)
        detail = " ".join(str(record.get(k) or "") for k in ("Type", "Description", "Details")).strip()
        return DeliveryEvent(NAME, event_id, kind, email, message_ids, parse_time(record.get("BouncedAt")), detail)
    if kind_name == "SubscriptionChange":
        if record.get("SuppressSending") is not True:
            return None  # a reactivation at Postmark: our own list decides, never lifted from outside
        change = SUPPRESSION_KINDS.get(str(record.get("SuppressionReason")))
        if change is None:
            return None
        detail = f"{record.get('SuppressionReason')} (origin {record.get('Origin', 'unknown')})"
        return DeliveryEvent(
            NAME,
            fallback_event_id(record),
            change,
            _email(record, "Recipient"),
            message_ids,
            parse_time(record.get("ChangedAt")),
            detail,
        )
    return None


def _email(record: dict[str, Any], field: str) -> str:
    value = record.get(field)
    if not isinstance(value, str) or "@" not in value:
        raise InvalidPayload(f"field {field!r} must be an email address")
    return value.strip().lower()


def inbound_recipients(body: bytes) -> list[str]:
    """The addresses an inbound mail was sent to (Postmark inbound webhook JSON)."""
    record = load_json(body)
    if not isinstance(record, dict):
        raise InvalidPayload("expected one JSON object")
    found = [record.get("OriginalRecipient")]
    for field in ("ToFull", "CcFull", "BccFull"):
        found += [r.get("Email") for r in record.get(field) or [] if isinstance(r, dict)]
    return [a for a in found if isinstance(a, str) and a]


# ---------------------------------------------------------------------------------------------
# Registration


def _transport(settings: Settings) -> Transport:
    if not settings.api_token:
        raise ProviderConfigError("DIGEST_TRANSPORT=postmark needs DIGEST_API_TOKEN (the server token)")
    return PostmarkTransport(settings.api_token, api_url=settings.api_url or POSTMARK_API_URL)


def _check(headers: Mapping[str, str], settings: Settings, now: datetime | None = None) -> None:
    user, password = settings.postmark_webhook_user, settings.postmark_webhook_password
    if not verify(headers.get("authorization"), user, password):
        configured = bool(user and password)
        raise NotVerified(
            "credentials did not verify" if configured else "DIGEST_POSTMARK_WEBHOOK_USER/_PASSWORD are not set",
            challenge='Basic realm="digest webhooks"',
        )


def _events(call: WebhookCall) -> list[DeliveryEvent]:
    _check(call.headers, call.settings)
    return parse(call.body)


def _inbound(call: WebhookCall) -> list[str]:
    _check(call.headers, call.settings)
    return inbound_recipients(call.body)


PROVIDER = Provider(NAME, _transport, precheck=_check, events=_events, inbound=_inbound)
