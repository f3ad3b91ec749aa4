"""Public sign-up with double opt-in, bounded so the form cannot be used to bomb a mailbox.

Two limits: at most ``confirmations_per_address_per_day`` confirmation emails to one address (counted
in ``signup_attempts``), and at most ``signups_per_client`` form posts per client address per window
(a fixed-window counter in Redis when one is configured, else counted in ``signup_attempts``).
The page a visitor sees is the same whether an email was sent or not, so the form reveals nothing
about who is subscribed.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.subscribers.consent import record_consent
from digest.subscribers.lifecycle import apply_preferences
from digest.subscribers.models import (
    ConsentAction,
    ConsentMethod,
    SignupAttempt,
    Subscriber,
    SubscriberStatus,
    SuppressionReason,
)
from digest.subscribers.schema import SubscriberIn
from digest.subscribers.suppression import suppression_reasons


class ClientLimiter(Protocol):
    def allow(self, session: Session, client: str, now: datetime) -> bool:
        """Count one sign-up post from ``client``; False once the window's budget is spent."""
        ...


class DatabaseClientLimiter:
    """Counts the client's recorded sign-up attempts in the last window (no Redis needed)."""

    def __init__(self, limit: int, window: timedelta):
        self.limit = limit
        self.window = window

    def allow(self, session: Session, client: str, now: datetime) -> bool:
        recent = session.scalar(
            select(func.count())
            .select_from(SignupAttempt)
            .where(SignupAttempt.client == client, SignupAttempt.created_at > now - self.window)
        )
        return (recent or 0) < self.limit


class RedisClientLimiter:
    """A fixed-window counter shared by every web process: INCR + EXPIRE on one key per window."""

    def __init__(self, url: str, limit: int, window: timedelta, prefix: str = "digest:signup"):
        import redis

        self.redis = redis.Redis.from_url(url)
        self.limit = limit
        self.window = int(window.total_seconds())
        self.prefix = prefix

    def allow(self, session: Session, client: str, now: datetime) -> bool:
        key = f"{self.prefix}:{client}:{int(now.timestamp()) // self.window}"
        pipe = self.redis.pipeline()
        pipe.incr(key)
        pipe.expire(key, self.window * 2)
        count, _ = pipe.execute()
        return int(count) <= self.limit


def _one_at_a_time(session: Session, email: str) -> None:
    """Sign-ups of one address count and insert one after another: without this, concurrent
    requests each counted the others' rows as not there yet and the daily cap let 4 of 30 through.
    PostgreSQL: a transaction-scoped advisory lock on the address; SQLite runs one writer at a time."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"), {"key": f"signup:{email}"})


def request_signup(
    session: Session, data: SubscriberIn, client: str, now: datetime, *, per_address_per_day: int
) -> int | None:
    """Record a sign-up; return the subscriber id to send a confirmation to, or None to send nothing.

    New addresses become pending subscribers. A pending or unsubscribed subscriber's choices are
    updated (an unsubscribed one stays unsubscribed, and gets nothing but the confirmation, until
    they confirm). Active and paused subscribers keep their choices: the email lets them confirm
    it was them and links to their preferences. Addresses blocked by a bounce, a complaint or an
    operator get no email at all.
    """
    _one_at_a_time(session, data.email)
    blocked = suppression_reasons(session, data.email) - {SuppressionReason.UNSUBSCRIBED}
    sent_today = session.scalar(
        select(func.count())
        .select_from(SignupAttempt)
        .where(
            SignupAttempt.email == data.email,
            SignupAttempt.confirmation_sent.is_(True),
            SignupAttempt.created_at > now - timedelta(days=1),
        )
    )
    send = not blocked and (sent_today or 0) < per_address_per_day
    session.add(SignupAttempt(email=data.email, client=client, confirmation_sent=send, created_at=now))
    if not send:
        session.flush()
        return None
    row = session.scalar(select(Subscriber).where(Subscriber.email == data.email))
    if row is None:
        try:
            with session.begin_nested():
                row = Subscriber(email=data.email, name=data.name, status=SubscriberStatus.PENDING, created_at=now)
                session.add(row)
        except IntegrityError:  # the same address signed up in a concurrent request a moment ago
            row = session.scalars(select(Subscriber).where(Subscriber.email == data.email)).one()
    if row.status in (SubscriberStatus.PENDING, SubscriberStatus.UNSUBSCRIBED):
        apply_preferences(session, row, data)
        session.flush()
        record_consent(session, row, ConsentAction.SIGNUP, ConsentMethod.FORM, now, ip=client)
    session.flush()
    return row.id
