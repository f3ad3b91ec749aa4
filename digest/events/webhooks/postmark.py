"""Postmark: bounce, spam complaint and subscription change webhooks, authenticated by HTTP basic auth.

Payloads (https://postmarkapp.com/developer/webhooks): a Bounce has ``RecordType: "Bounce"``,
``ID``, ``Type`` (HardBounce, SoftBounce, ...), ``MessageID``, ``Email``, ``BouncedAt``, ``Inactive``;
a SpamComplaint has the same shape with ``RecordType: "SpamComplaint"``; a SubscriptionChange has
``MessageID``, ``Recipient``, ``SuppressSending``, ``SuppressionReason`` (HardBounce, SpamComplaint,
ManualSuppression) and ``ChangedAt``, but no id of its own. Inbound mail (for the mailto
unsubscribe) arrives as JSON with ``OriginalRecipient`` and ``ToFull``.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from typing import Any

from digest.events.webhooks.event import (
    DeliveryEvent,
    EventKind,
    InvalidPayload,
    fallback_event_id,
    load_json,
    parse_time,
)

PROVIDER = "postmark"
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
        return DeliveryEvent(PROVIDER, event_id, kind, email, message_ids, parse_time(record.get("BouncedAt")), detail)
    if kind_name == "SubscriptionChange":
        if record.get("SuppressSending") is not True:
            return None  # a reactivation at Postmark: our own list decides, never lifted from outside
        change = SUPPRESSION_KINDS.get(str(record.get("SuppressionReason")))
        if change is None:
            return None
        detail = f"{record.get('SuppressionReason')} (origin {record.get('Origin', 'unknown')})"
        return DeliveryEvent(
            PROVIDER,
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
