"""A subscriber's own state changes: confirm, preferences, pause, unsubscribe.

Unsubscribing takes effect at once, even while a send is running. Its transaction starts by
cancelling the subscriber's pending and sending deliveries. The send path locks each batch's rows
while it sends them (see ``digest.delivery.service``), so this UPDATE waits for a batch that
holds one of them. The unsubscribe therefore commits either before that message is sent (the row is
cancelled and the worker skips it) or after it was recorded as sent. No message can leave after
the unsubscribe commits.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Integer, Select, String, Text, bindparam, case, exists, insert, literal, select, true, update
from sqlalchemy.orm import Session, aliased

from digest.errors import Invalid, Term
from digest.i18n import N_
from digest.ingest.specialties import specialty_map
from digest.integrations.webhooks import emit, listeners, listening
from digest.ledger.models import Delivery, DeliveryStatus
from digest.ledger.readers import open_issues, rows_of
from digest.subscribers.consent import record_consent, subscriber_payload
from digest.subscribers.models import (
    ConsentAction,
    ConsentEvent,
    ConsentMethod,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from digest.subscribers.schema import PreferencesIn
from digest.subscribers.suppression import lift_unsubscribe, suppress, suppress_selected

# Built once: a statement's SQL and cache key are worked out on first use and reused, where a
# statement built per call costs more Python than its round trip (one-click bursts run these).
# The reader's rows of the open issues are found through (issue_id, subscriber_id) first, and only
# then tested for pending. With the status test beside the lookup, PostgreSQL took (issue_id, status),
# whose statistics on an aged ledger see almost no pending row, and read every pending row of the
# issue being sent for each unsubscribe: 0.2-1.2 s each at 100k readers on 365 days of history.
_THEIR_OPEN_ROWS = aliased(Delivery)
_CANCEL_OPEN = (
    update(Delivery)
    .where(
        Delivery.id.in_(select(_THEIR_OPEN_ROWS.id).where(rows_of(bindparam("who"), open_issues(), _THEIR_OPEN_ROWS))),
        Delivery.status == DeliveryStatus.PENDING,
    )
    .values(status=DeliveryStatus.CANCELLED, error=bindparam("reason"))
)
_UNSUBSCRIBE = (
    update(Subscriber)
    .where(Subscriber.id == bindparam("who"))
    .values(
        status=SubscriberStatus.UNSUBSCRIBED,
        unsubscribed_at=case(
            (Subscriber.status == SubscriberStatus.UNSUBSCRIBED, Subscriber.unsubscribed_at),
            else_=bindparam("now", type_=Subscriber.unsubscribed_at.type),
        ),
    )
    .returning(Subscriber.email)
)
_STATUS = select(Subscriber.status).where(Subscriber.id == bindparam("who"))
_CONSENT_COLUMNS = ["subscriber_id", "at", "action", "method", "ip", "detail"]


def _consent_values() -> list[Any]:
    """The unsubscribe's consent event as bound values (one INSERT, no ORM object)."""
    return [
        bindparam("who", type_=Integer),
        bindparam("now", type_=Subscriber.unsubscribed_at.type),
        literal(ConsentAction.UNSUBSCRIBED.value),
        bindparam("method", type_=String),
        bindparam("ip", type_=String),
        bindparam("consent", type_=Text),
    ]


_RECORD_UNSUBSCRIBE = insert(ConsentEvent).from_select(_CONSENT_COLUMNS, select(*_consent_values()))


def cancel_open_deliveries(session: Session, subscriber_id: int, reason: str) -> int:
    """Cancel every delivery of the subscriber that has not gone out; returns how many."""
    result = session.connection().execute(_CANCEL_OPEN, {"who": subscriber_id, "reason": reason})
    return int(result.rowcount or 0)


def _unsubscribe_in_one_statement() -> Select[Any]:
    """PostgreSQL: the same three writes as one statement (data-modifying CTEs), one round trip.

    The deliveries UPDATE still waits for a send batch that holds one of the rows, and the whole
    statement commits or not, so the guarantee of the module docstring is unchanged.
    """
    cancelled = _CANCEL_OPEN.cte("cancelled")
    gone = _UNSUBSCRIBE.cte("gone")
    now = bindparam("now", type_=Subscriber.unsubscribed_at.type)
    listed = suppress_selected(
        "postgresql", gone.c.email, SuppressionReason.UNSUBSCRIBED, bindparam("detail"), now
    ).cte("listed")
    before = _STATUS.cte("before")  # every part of one statement sees the rows as they were before it
    consented = (
        insert(ConsentEvent)
        .from_select(
            _CONSENT_COLUMNS,
            select(*_consent_values()).where(before.c.status != SubscriberStatus.UNSUBSCRIBED),
        )
        .cte("consented")
    )
    hooked = exists(listeners("unsubscribed"))  # does a webhook endpoint want the event
    return (
        select(gone.c.email, before.c.status, hooked)
        .select_from(gone.join(before, true()))
        .add_cte(cancelled, listed, consented)
    )


_UNSUBSCRIBE_AT_ONCE = _unsubscribe_in_one_statement()


def unsubscribe(
    session: Session,
    subscriber_id: int,
    now: datetime,
    *,
    source: str,
    method: ConsentMethod = ConsentMethod.FORM,
    ip: str | None = None,
) -> str | None:
    """Unsubscribe at once (see the module docstring); returns the address, or None if there is no
    such subscriber. Repeating it changes nothing (the first unsubscribe's time is kept); the first
    one is recorded as a consent event (``method``, ``ip``) and emitted to webhooks.

    Call it at the start of a transaction: the cancelling UPDATE must be its first statement, so
    that on SQLite it takes the write lock before reading anything (no stale read snapshot). Core
    statements on the session's connection, no ORM loading or unit of work (one statement on
    PostgreSQL, with the consent event and whether a webhook endpoint listens; up to six on SQLite):
    this is what a burst of one-click POSTs runs while a send is on.
    Subscriber objects already loaded in the session are not refreshed.
    """
    reason = f"unsubscribed ({source})"
    consent = {"method": method.value, "ip": ip, "consent": json.dumps({"source": source})}
    params = {"who": subscriber_id, "now": now, **consent}
    if session.get_bind().dialect.name == "postgresql":
        gone = session.connection().execute(_UNSUBSCRIBE_AT_ONCE, {**params, "reason": reason, "detail": source})
        found: Any = gone.one_or_none()  # (email, status before this statement, a listener exists)
        if found is None:
            return None
        email, before, hooked = found
    else:
        cancel_open_deliveries(session, subscriber_id, reason)
        before = session.connection().execute(_STATUS, {"who": subscriber_id}).scalar_one_or_none()
        email = session.connection().execute(_UNSUBSCRIBE, {"who": subscriber_id, "now": now}).scalar_one_or_none()
        if email is None:
            return None
        suppress(session, email, SuppressionReason.UNSUBSCRIBED, detail=source)
        if before != SubscriberStatus.UNSUBSCRIBED:
            session.connection().execute(_RECORD_UNSUBSCRIBE, params)
        hooked = before != SubscriberStatus.UNSUBSCRIBED and listening(session, "unsubscribed")
    if before != SubscriberStatus.UNSUBSCRIBED and hooked:
        # Only when an endpoint wants it: the burst path stays one statement.
        subscriber = session.get(Subscriber, subscriber_id, populate_existing=True)
        assert subscriber is not None
        data = {"subscriber": subscriber_payload(subscriber), "method": method.value}
        emit(session, "unsubscribed", data, subscriber_id, now)
    return str(email)


class ConfirmOutcome(StrEnum):
    CONFIRMED = "confirmed"
    ALREADY = "already"  # active or paused already: nothing to do
    STALE = "stale"  # the link was issued before the subscriber unsubscribed
    MISSING = "missing"


@dataclass(frozen=True)
class Confirmation:
    outcome: ConfirmOutcome
    subscriber: Subscriber | None


def confirm(
    session: Session, subscriber_id: int, issued_at: datetime, now: datetime, *, ip: str | None = None
) -> Confirmation:
    """Activate a pending (or re-subscribing) subscriber from their confirmation link.

    A re-subscription lifts the suppression entry their unsubscribe left; entries for bounces,
    complaints or operator blocks stay, so such an address still receives nothing.
    """
    row = session.get(Subscriber, subscriber_id)
    if row is None:
        return Confirmation(ConfirmOutcome.MISSING, None)
    if row.status in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
        return Confirmation(ConfirmOutcome.ALREADY, row)
    if (
        row.status == SubscriberStatus.UNSUBSCRIBED
        and row.unsubscribed_at is not None
        and issued_at < row.unsubscribed_at.replace(microsecond=0)
    ):
        return Confirmation(ConfirmOutcome.STALE, row)
    lift_unsubscribe(session, row.email)
    row.status = SubscriberStatus.ACTIVE
    row.confirmed_at = now
    row.unsubscribed_at = None
    session.flush()
    record_consent(session, row, ConsentAction.CONFIRMED, ConsentMethod.FORM, now, ip=ip)
    return Confirmation(ConfirmOutcome.CONFIRMED, row)


def apply_preferences(session: Session, row: Subscriber, prefs: PreferencesIn) -> None:
    """Write the subscriber's choices (specialties already validated against the known list)."""
    specialties = specialty_map(session)
    row.specialties = [specialties[s] for s in prefs.specialties]
    row.cadence = prefs.cadence
    row.timezone = prefs.timezone
    row.edition = prefs.edition
    row.send_hour = prefs.send_hour
    row.send_weekday = prefs.send_weekday
    row.locale = prefs.locale


def update_preferences(
    session: Session,
    row: Subscriber,
    prefs: PreferencesIn,
    *,
    paused: bool,
    now: datetime,
    method: ConsentMethod = ConsentMethod.FORM,
    ip: str | None = None,
) -> None:
    """The preference centre's save: choices plus pause/resume (only for active or paused subscribers),
    recorded as a consent event."""
    if row.status not in (SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED):
        raise Invalid(
            N_("subscriber %(id)s is %(status)s; only active or paused subscribers have preferences"),
            id=row.id,
            status=Term(row.status),
        )
    apply_preferences(session, row, prefs)
    row.status = SubscriberStatus.PAUSED if paused else SubscriberStatus.ACTIVE
    if paused:
        cancel_open_deliveries(session, row.id, "paused by the subscriber")
    session.flush()
    record_consent(session, row, ConsentAction.PREFERENCES, method, now, ip=ip)
