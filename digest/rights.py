"""Readers' data rights: export everything held about one reader, and erase it.

Export (``export_subscriber``): the profile, the choices, the consent record, every delivery with
the issue and the summaries it carried, every click on those deliveries, the sign-up attempts, the
suppression entries and provider events for the address. Nothing about anyone else.

Erasure (``erase_subscriber``) keeps the ledger whole and the address out of every table:

- the subscriber row stays (deliveries and clicks point at it, so issue figures still add up) but
  is anonymised: the address becomes ``erased-<id>@erased.invalid``, the name and specialties go,
  every other choice (edition, cadence, send time and time zone, language, safety alerts, relevance
  filters) is put back to the default a new row gets, status ``unsubscribed``, ``erased_at`` set;
  open deliveries are cancelled first;
- the consent record and the sign-up attempts (address and IP) are deleted;
- provider events keep their kind and times, with the address replaced; delivery errors and queued
  webhook payloads have the address replaced;
- the suppression entry for the address moves to the placeholder (bounce and complaint figures
  stay right), and one entry holding only the address's hash (reason ``erased``) is added, so a
  later import, API call or sign-up of the address is refused.

See docs/privacy.md.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, literal, or_, select, update
from sqlalchemy.orm import Session

from digest.events.models import WebhookEvent
from digest.ingest.models import Summary
from digest.integrations.models import WebhookDelivery
from digest.issues.models import Click
from digest.ledger.carried import summaries_by_delivery
from digest.ledger.models import Delivery, Issue
from digest.ledger.readers import every_issue, rows_of
from digest.subscribers.consent import choices_of
from digest.subscribers.lifecycle import cancel_open_deliveries
from digest.subscribers.models import (
    ConsentEvent,
    SignupAttempt,
    Subscriber,
    SubscriberStatus,
    Suppression,
    SuppressionReason,
)
from digest.subscribers.suppression import address_hash, suppress

ERASED_DOMAIN = "erased.invalid"


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def find_subscriber(session: Session, email: str) -> Subscriber | None:
    return session.scalar(select(Subscriber).where(Subscriber.email == email.strip().lower()))


def export_subscriber(session: Session, row: Subscriber, now: datetime) -> dict[str, Any]:
    """Everything held about this reader, as one JSON-ready dict."""
    email = row.email
    deliveries = session.execute(
        select(Delivery, Issue.subject, Issue.kind)
        .join(Issue, Issue.id == Delivery.issue_id)
        .where(rows_of(row.id, every_issue()))
        .order_by(Delivery.id)
    ).all()
    carried = summaries_by_delivery(session, [d.id for d, _, _ in deliveries])
    carried_ids = {s for ids in carried.values() for s in ids}
    titles = dict(session.execute(select(Summary.id, Summary.title).where(Summary.id.in_(carried_ids))).all())
    clicks = session.execute(
        select(Click.delivery_id, Click.url, Click.at)
        .join(Delivery, Delivery.id == Click.delivery_id)
        .where(rows_of(row.id, every_issue()))
        .order_by(Click.at, Click.id)
    ).all()
    consent = session.scalars(
        select(ConsentEvent).where(ConsentEvent.subscriber_id == row.id).order_by(ConsentEvent.at, ConsentEvent.id)
    ).all()
    attempts = session.scalars(
        select(SignupAttempt).where(SignupAttempt.email == email).order_by(SignupAttempt.created_at)
    ).all()
    suppressions = session.scalars(
        select(Suppression).where(Suppression.value.in_([email, address_hash(email)])).order_by(Suppression.id)
    ).all()
    events = session.scalars(
        select(WebhookEvent).where(WebhookEvent.email == email).order_by(WebhookEvent.received_at, WebhookEvent.id)
    ).all()
    return {
        "exported_at": now.isoformat(),
        "profile": {
            "id": row.id,
            "email": email,
            "name": row.name,
            "status": row.status,
            "created_at": _iso(row.created_at),
            "confirmed_at": _iso(row.confirmed_at),
            "unsubscribed_at": _iso(row.unsubscribed_at),
            "last_digest_at": _iso(row.last_digest_at),
        },
        "choices": {k: v for k, v in choices_of(row).items() if k != "status"},
        "consent_events": [
            {
                "at": _iso(c.at),
                "action": c.action,
                "method": c.method,
                "ip": c.ip,
                "choices": json.loads(c.detail) if c.detail else None,
            }
            for c in consent
        ],
        "deliveries": [
            {
                "id": d.id,
                "issue_id": d.issue_id,
                "issue_kind": kind,
                "subject": subject,
                "status": d.status,
                "created_at": _iso(d.created_at),
                "sent_at": _iso(d.sent_at),
                "message_id": d.message_id,
                "summaries": [{"id": s, "title": titles.get(s, "")} for s in carried.get(d.id, [])],
            }
            for d, subject, kind in deliveries
        ],
        "clicks": [{"delivery_id": c.delivery_id, "url": c.url, "at": _iso(c.at)} for c in clicks],
        "signup_attempts": [
            {"at": _iso(a.created_at), "ip": a.client, "confirmation_sent": a.confirmation_sent} for a in attempts
        ],
        "suppressions": [{"reason": s.reason, "since": _iso(s.created_at), "detail": s.detail} for s in suppressions],
        "provider_events": [
            {
                "provider": e.provider,
                "kind": e.kind,
                "detail": e.detail,
                "occurred_at": _iso(e.occurred_at),
                "received_at": _iso(e.received_at),
            }
            for e in events
        ],
    }


def erased_address(subscriber_id: int) -> str:
    return f"erased-{subscriber_id}@{ERASED_DOMAIN}"


def _forget_choices(row: Subscriber) -> None:
    """Put every choice back to the default a new row gets: the edition, cadence, time and language a
    reader chose, and their relevance filters, say something about them (a patient edition in
    Spanish on oncology trials, say) and must not outlive the erasure."""
    for column in Subscriber.__table__.columns:
        if column.name in CHOICE_COLUMNS:
            default = column.default.arg if column.default is not None else None
            setattr(row, column.name, default)


# The columns of a reader's choices that erasure puts back to their defaults (specialties, name and
# address are handled on their own).
CHOICE_COLUMNS = (
    "cadence",
    "timezone",
    "send_hour",
    "send_weekday",
    "edition",
    "locale",
    "safety_alerts",
    "min_evidence_level",
    "study_types",
    "max_items",
)


def erase_subscriber(session: Session, row: Subscriber, now: datetime, *, source: str) -> None:
    """Erase the reader's personal data (see the module docstring); the caller commits."""
    email = row.email
    placeholder = erased_address(row.id)
    cancel_open_deliveries(session, row.id, "erased")
    # The address's own entry moves to the placeholder (issue figures count bounces and complaints
    # through it); the hash is what blocks the address from now on.
    session.execute(
        update(Suppression)
        .where(Suppression.value == email)
        .values(value=placeholder, detail=func.replace(Suppression.detail, email, placeholder))
        .execution_options(synchronize_session=False)
    )
    suppress(session, address_hash(email), SuppressionReason.ERASED, f"erased ({source}) {now:%Y-%m-%d}")
    session.execute(delete(SignupAttempt).where(SignupAttempt.email == email))
    session.execute(delete(ConsentEvent).where(ConsentEvent.subscriber_id == row.id))
    session.execute(
        update(WebhookEvent)
        .where(WebhookEvent.email == email)
        .values(email=placeholder, detail=func.replace(WebhookEvent.detail, email, placeholder))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(Delivery)
        .where(rows_of(row.id, every_issue()), Delivery.error.contains(email, autoescape=True))
        .values(error=func.replace(Delivery.error, email, placeholder))
        .execution_options(synchronize_session=False)
    )
    session.execute(
        update(WebhookDelivery)
        .where(
            or_(
                WebhookDelivery.subscriber_id == row.id,
                WebhookDelivery.payload.contains(email, autoescape=True),
            )
        )
        .values(
            payload=func.replace(WebhookDelivery.payload, literal(email), placeholder),
            last_error=func.replace(WebhookDelivery.last_error, email, placeholder),
        )
        .execution_options(synchronize_session=False)
    )
    row.email = placeholder
    row.name = ""
    row.specialties = []
    _forget_choices(row)
    if row.status != SubscriberStatus.UNSUBSCRIBED:
        row.status = SubscriberStatus.UNSUBSCRIBED
        row.unsubscribed_at = now
    row.erased_at = now
    session.flush()
