"""The consent record: every opt-in and every change of a subscriber's choices, with when, how and
from where (the client's IP for the public pages). A reader's export lists it; erasure removes it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from digest.integrations.webhooks import emit
from digest.subscribers.models import ConsentAction, ConsentEvent, ConsentMethod, Subscriber
from digest.subscribers.relevance import current_relevance

# The outgoing webhook event each consent change is (preference changes have none).
CONSENT_EVENTS = {
    ConsentAction.SIGNUP: "subscribed",
    ConsentAction.ADDED: "subscribed",
    ConsentAction.CONFIRMED: "confirmed",
    ConsentAction.UNSUBSCRIBED: "unsubscribed",
}


def choices_of(row: Subscriber) -> dict[str, Any]:
    """The subscriber's choices as they stand (what a consent event records and an export shows):
    what they get and when, urgent safety alerts or not, and the relevance filters."""
    return {
        "specialties": [s.slug for s in row.specialties],
        "cadence": row.cadence,
        "timezone": row.timezone,
        "edition": row.edition,
        "send_hour": row.send_hour,
        "send_weekday": row.send_weekday,
        "locale": row.locale,
        **current_relevance(row),
        "status": row.status,
    }


def record_consent(
    session: Session,
    row: Subscriber,
    action: ConsentAction,
    method: ConsentMethod,
    at: datetime,
    *,
    ip: str | None = None,
    detail: dict[str, Any] | None = None,
) -> ConsentEvent:
    """Add one consent event for ``row`` (flushed with the caller's transaction), and queue the
    matching outgoing webhook event, if any endpoint listens for it."""
    event = ConsentEvent(
        subscriber_id=row.id,
        at=at,
        action=action,
        method=method,
        ip=ip,
        detail=json.dumps(detail if detail is not None else choices_of(row), sort_keys=True),
    )
    session.add(event)
    webhook = CONSENT_EVENTS.get(action)
    if webhook is not None:
        emit(session, webhook, {"subscriber": subscriber_payload(row), "method": method.value}, row.id, at)
    return event


def subscriber_payload(row: Subscriber) -> dict[str, Any]:
    """A subscriber as the API and webhooks show it."""
    return {
        "id": row.id,
        "email": row.email,
        "name": row.name,
        "created_at": row.created_at.isoformat() if row.created_at else None,
        "confirmed_at": row.confirmed_at.isoformat() if row.confirmed_at else None,
        "unsubscribed_at": row.unsubscribed_at.isoformat() if row.unsubscribed_at else None,
        **choices_of(row),
    }
