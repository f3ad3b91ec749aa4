"""Record provider events in one place: de-duplicate, link to the delivery, update the suppression list.

- hard bounce: suppress the address (``suppress_bounce``, which emits the ``bounced`` webhook event);
  the delivery it answers becomes ``failed``.
- complaint: suppress the address (reason complaint) and unsubscribe whoever has it.
- unsubscribe (at the provider, or by mail to the ``List-Unsubscribe`` mailto): unsubscribe at once.
- soft bounce: recorded; the address is suppressed (as a hard bounce) once it has ``limit`` soft
  bounces within ``days`` (``DIGEST_SOFT_BOUNCE_LIMIT`` / ``_DAYS``), else the next send tries again.
- dropped: the delivery becomes ``failed``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.events.delivery_event import DeliveryEvent, EventKind
from digest.events.models import WebhookEvent
from digest.integrations.webhooks import emit
from digest.ledger.models import Delivery, DeliveryStatus
from digest.subscribers.lifecycle import unsubscribe
from digest.subscribers.models import ConsentMethod, Subscriber, SuppressionReason
from digest.subscribers.suppression import suppress, suppress_bounce
from digest.subscribers.tokens import BadToken, Tokens

log = logging.getLogger(__name__)


@dataclass
class EventReport:
    processed: int = 0
    duplicates: int = 0


@dataclass(frozen=True)
class SoftBounceLimit:
    """Soft bounces an address may collect within ``days`` before it is suppressed."""

    limit: int = 3
    days: int = 30


def record_events(
    session: Session, events: list[DeliveryEvent], now: datetime, soft: SoftBounceLimit | None = None
) -> EventReport:
    report = EventReport()
    soft = soft or SoftBounceLimit()
    for event in events:
        delivery_id = _delivery_for(session, event)
        try:
            with session.begin_nested():
                session.add(
                    WebhookEvent(
                        provider=event.provider,
                        event_id=event.event_id[:255],
                        kind=event.kind,
                        email=event.email,
                        delivery_id=delivery_id,
                        detail=event.detail or None,
                        occurred_at=event.occurred_at,
                        received_at=now,
                    )
                )
        except IntegrityError:
            report.duplicates += 1
            continue
        _apply(session, event, delivery_id, now)
        if event.kind == EventKind.SOFT_BOUNCE:
            _count_soft_bounce(session, event, delivery_id, now, soft)
        report.processed += 1
    return report


def _delivery_for(session: Session, event: DeliveryEvent) -> int | None:
    if not event.provider_message_ids:
        return None
    return session.scalar(
        select(Delivery.id)
        .where(Delivery.provider_message_id.in_(event.provider_message_ids))
        .order_by(Delivery.id)
        .limit(1)
    )


def _apply(session: Session, event: DeliveryEvent, delivery_id: int | None, now: datetime) -> None:
    detail = f"{event.provider}: {event.detail}".strip()
    if event.kind == EventKind.COMPLAINT:  # before the unsubscribe it causes: receivers get them in that order
        subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email == event.email))
        data = {
            "email": event.email,
            "subscriber_id": subscriber_id,
            "delivery_id": delivery_id,
            "provider": event.provider,
            "detail": event.detail,
        }
        emit(session, "complained", data, subscriber_id, now)
    if event.kind in (EventKind.HARD_BOUNCE, EventKind.DROPPED) and delivery_id is not None:
        session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id)
            .values(status=DeliveryStatus.FAILED, error=detail)
            .execution_options(synchronize_session=False)
        )
    if event.kind == EventKind.HARD_BOUNCE:  # "bounced" goes to webhook receivers from there
        suppress_bounce(session, event.email, detail, now, delivery_id=delivery_id, provider=event.provider)
    elif event.kind == EventKind.COMPLAINT:
        suppress(session, event.email, SuppressionReason.COMPLAINT, detail)
    if event.kind in (EventKind.COMPLAINT, EventKind.UNSUBSCRIBE):
        subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email == event.email))
        if subscriber_id is None:
            suppress(session, event.email, SuppressionReason.UNSUBSCRIBED, detail)
        else:
            unsubscribe(session, subscriber_id, now, source=detail, method=ConsentMethod.PROVIDER)


def _count_soft_bounce(
    session: Session, event: DeliveryEvent, delivery_id: int | None, now: datetime, soft: SoftBounceLimit
) -> None:
    """Suppress the address once its soft bounces within the window reach the limit."""
    since = now - timedelta(days=soft.days)
    seen = session.scalar(
        select(func.count()).where(
            WebhookEvent.email == event.email,
            WebhookEvent.kind == EventKind.SOFT_BOUNCE,
            WebhookEvent.received_at >= since,
        )
    )
    if (seen or 0) >= soft.limit:
        detail = f"{seen} soft bounces in {soft.days} days; the last: {event.provider}: {event.detail}".strip()
        suppress_bounce(session, event.email, detail, now, delivery_id=delivery_id, provider=event.provider)


def mailbox_tokens(recipients: list[str], domain: str) -> list[str]:
    """The tokens in ``unsubscribe+<token>@<domain>`` recipients (any case), in order, once each."""
    found = []
    for address in recipients:
        local, _, host = address.strip().strip("<>").rpartition("@")
        prefix, plus, token = local.partition("+")
        if plus and prefix.lower() == "unsubscribe" and host.lower() == domain.lower() and token:
            found.append(token.lower())
    return list(dict.fromkeys(found))


def unsubscribe_by_mail(session: Session, tokens: Tokens, recipients: list[str], domain: str, now: datetime) -> int:
    """Process a forwarded mail to the mailto unsubscribe address; returns how many were unsubscribed.

    The HMAC in the local part is the credential, as the signed token is for the HTTPS link: a
    forged one is ignored.
    """
    done = 0
    for token in mailbox_tokens(recipients, domain):
        try:
            subscriber_id = tokens.read_mailbox(token)
        except BadToken:
            log.info("inbound unsubscribe mail with an invalid token ignored")
            continue
        if unsubscribe(session, subscriber_id, now, source="mailto", method=ConsentMethod.EMAIL) is not None:
            done += 1
    return done
