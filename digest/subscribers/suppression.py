"""The suppression list: checked at planning time and again at send time."""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Insert, bindparam, delete, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from digest.db import rowcount, utcnow
from digest.integrations.webhooks import emit
from digest.subscribers.models import Subscriber, Suppression, SuppressionReason


def address_hash(email: str) -> str:
    """The entry an erased reader's address leaves: SHA-256 of the normalised (trimmed, lower-cased)
    address, so a later import or sign-up of it is refused without the list holding it in clear.
    Unkeyed on purpose: it must outlive a rotation of DIGEST_SECRET_KEY (see docs/privacy.md)."""
    return "sha256:" + hashlib.sha256(email.strip().lower().encode()).hexdigest()


def suppression_keys(email: str) -> list[str]:
    """The list entries that would block ``email``: the address, its domain, and its hash."""
    email = email.strip().lower()
    return [email, "@" + email.rsplit("@", 1)[-1], address_hash(email)]


def is_suppressed(session: Session, email: str) -> bool:
    return session.scalar(select(Suppression.id).where(Suppression.value.in_(suppression_keys(email)))) is not None


def suppression_reasons(session: Session, email: str) -> set[str]:
    """The reasons of every entry that blocks ``email`` (empty when it is not suppressed)."""
    return set(session.scalars(select(Suppression.reason).where(Suppression.value.in_(suppression_keys(email)))))


def suppress(session: Session, value: str, reason: SuppressionReason, detail: str | None = None) -> bool:
    """Add an address (or ``@domain``) to the list; return False if it was already there.

    One ``INSERT ... ON CONFLICT (value) DO NOTHING``: an entry that exists (or that a concurrent
    transaction adds first) keeps its original reason, and nothing else in the caller's transaction
    is disturbed. One round trip, because unsubscribes arrive in bursts while a send is running.
    """
    stmt = _insert_ignoring_duplicates(session.get_bind().dialect.name)
    params = {"value": value.strip().lower(), "reason": reason, "detail": detail, "created_at": utcnow()}
    return session.connection().execute(stmt, params).first() is not None


def suppress_bounce(
    session: Session,
    email: str,
    detail: str | None,
    now: datetime,
    *,
    delivery_id: int | None = None,
    provider: str | None = None,
) -> bool:
    """Suppress an address that bounced, and tell webhook receivers (``bounced``): the one place for
    every bounce that suppresses: a provider's hard bounce, a 5xx at send time, the soft-bounce limit
    reached. Returns whether the address was newly added to the list.

    The event goes out when the address is newly suppressed, or was on the list for another reason
    (an unsubscribe: the address is now known to be bad as well); a further bounce of an address
    already suppressed as bounced tells receivers nothing new, and emits nothing.
    """
    email = email.strip().lower()
    added = suppress(session, email, SuppressionReason.HARD_BOUNCE, detail)
    if not added:
        reason = session.scalar(select(Suppression.reason).where(Suppression.value == email))
        if reason == SuppressionReason.HARD_BOUNCE:
            return False
    subscriber_id = session.scalar(select(Subscriber.id).where(Subscriber.email == email))
    data = {
        "email": email,
        "subscriber_id": subscriber_id,
        "delivery_id": delivery_id,
        "provider": provider,
        "detail": detail,
    }
    emit(session, "bounced", data, subscriber_id, now)
    return added


def suppress_selected(
    dialect: str,
    addresses: ColumnElement[str],
    reason: SuppressionReason,
    detail: ColumnElement[Any],
    at: ColumnElement[datetime],
) -> Insert:
    """``suppress`` for addresses another statement produces (``addresses`` names a column of it):
    ``INSERT ... SELECT`` normalised the same way, entries already there kept. Unsubscribe uses it
    inside its single statement on PostgreSQL."""
    normalised = func.lower(func.trim(addresses))
    rows = select(normalised, literal(reason.value), detail, at)
    return _ignoring_duplicates(_insert(dialect).from_select(list(_COLUMNS), rows))


_COLUMNS = ("value", "reason", "detail", "created_at")


@cache
def _insert_ignoring_duplicates(dialect: str) -> Insert:
    values = {name: bindparam(name, type_=Suppression.__table__.c[name].type) for name in _COLUMNS}
    return _ignoring_duplicates(_insert(dialect).values(values)).returning(Suppression.id)


def _insert(dialect: str) -> Insert:
    module = {"postgresql": postgresql, "sqlite": sqlite}.get(dialect)
    if module is None:
        raise NotImplementedError(f"suppressions need PostgreSQL or SQLite, not {dialect}")
    return module.insert(Suppression)


def _ignoring_duplicates(insert: Insert) -> Insert:
    return insert.on_conflict_do_nothing(index_elements=[Suppression.value])  # type: ignore[attr-defined]


def lift_unsubscribe(session: Session, email: str) -> bool:
    """Remove the entry an unsubscribe left for this exact address (never a bounce, complaint or
    operator entry); True if there was one. Only a confirmed new sign-up may call this."""
    result = session.execute(
        delete(Suppression)
        .where(Suppression.value == email.lower(), Suppression.reason == SuppressionReason.UNSUBSCRIBED)
        .execution_options(synchronize_session=False)
    )
    return bool(rowcount(result))
