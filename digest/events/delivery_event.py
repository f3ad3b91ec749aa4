"""The provider-neutral event every webhook parser produces."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class EventKind(StrEnum):
    HARD_BOUNCE = "hard_bounce"  # the address is bad: suppress it
    SOFT_BOUNCE = "soft_bounce"  # temporary: recorded only
    COMPLAINT = "complaint"  # marked as spam: suppress and unsubscribe
    UNSUBSCRIBE = "unsubscribe"  # unsubscribed through the provider
    DROPPED = "dropped"  # the provider refused to send it (no judgement on the address)


class InvalidPayload(ValueError):
    """The body is not what the provider documents; the message says what is wrong."""


@dataclass(frozen=True)
class DeliveryEvent:
    provider: str
    event_id: str  # the provider's id for the event: the de-duplication key
    kind: EventKind
    email: str
    provider_message_ids: tuple[str, ...] = ()  # candidates to match Delivery.provider_message_id
    occurred_at: datetime | None = None
    detail: str = ""


def fallback_event_id(record: dict[str, Any]) -> str:
    """A stable id for records that carry none: the hash of their canonical JSON."""
    return "sha256:" + hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode()).hexdigest()


def parse_time(value: object) -> datetime | None:
    """ISO 8601 strings and Unix timestamps; None for anything else."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return None


def load_json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidPayload(f"body is not JSON: {exc}") from None
