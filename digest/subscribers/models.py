"""Subscribers and their chosen specialties, and the suppression list (addresses and domains never mailed)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Index,
    Integer,
    String,
    Table,
    Text,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from digest.config import DEFAULT_LOCALE
from digest.db import Base, UTCDateTime, one_of, utcnow
from digest.ingest.models import Specialty


class Cadence(StrEnum):
    DAILY = "daily"
    WEEKLY = "weekly"


class Edition(StrEnum):
    CLINICIAN = "clinician"
    PATIENT = "patient"


class SubscriberStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    PAUSED = "paused"
    UNSUBSCRIBED = "unsubscribed"


subscriber_specialties = Table(
    "subscriber_specialties",
    Base.metadata,
    Column("subscriber_id", ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True),
    Column("specialty_id", ForeignKey("specialties.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Subscriber(Base):
    __tablename__ = "subscribers"
    __table_args__ = (
        one_of("cadence", Cadence),
        one_of("edition", Edition),
        one_of("status", SubscriberStatus),
        CheckConstraint("send_hour BETWEEN 0 AND 23", name="send_hour"),
        CheckConstraint("send_weekday BETWEEN 0 AND 6", name="send_weekday"),
        # Room on each page for the digest stamp's new row version (migration 0010).
        {"postgresql_with": {"fillfactor": 50}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    cadence: Mapped[str] = mapped_column(String(16), default=Cadence.DAILY)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    send_hour: Mapped[int] = mapped_column(Integer, default=7)
    send_weekday: Mapped[int] = mapped_column(Integer, default=0)
    edition: Mapped[str] = mapped_column(String(16), default=Edition.CLINICIAN)
    # The language of their emails and pages, one of digest.config.LOCALES (migration 0019).
    locale: Mapped[str] = mapped_column(String(8), default=DEFAULT_LOCALE, server_default=DEFAULT_LOCALE)
    status: Mapped[str] = mapped_column(String(16), default=SubscriberStatus.PENDING, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    confirmed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    unsubscribed_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_digest_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Urgent safety alerts outside the cadence (digest/corrections/alerts.py): on unless turned off.
    safety_alerts: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # Relevance controls (preference centre), honoured by selection (digest/selection/picker.py):
    # the weakest evidence level wanted (1 strongest .. 5), the study types wanted ("|"-joined,
    # lower case; NULL: any), and at most this many summaries per digest (NULL: the site's maximum).
    min_evidence_level: Mapped[int | None] = mapped_column(Integer)
    study_types: Mapped[str | None] = mapped_column(Text)
    max_items: Mapped[int | None] = mapped_column(Integer)
    # Set when the reader's data was erased (digest.rights): the row stays, anonymised,
    # so that the ledger's figures still add up.
    erased_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    specialties: Mapped[list[Specialty]] = relationship(
        secondary=subscriber_specialties, lazy="selectin", order_by=Specialty.slug
    )

    def __repr__(self) -> str:
        return f"Subscriber({self.email!r})"


class SignupAttempt(Base):
    """One sign-up form post: the ledger behind the per-address and per-client rate limits."""

    __tablename__ = "signup_attempts"
    __table_args__ = (
        Index("ix_signup_attempts_email_created_at", "email", "created_at"),
        Index("ix_signup_attempts_client_created_at", "client", "created_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320))
    client: Mapped[str] = mapped_column(String(64))  # the client's IP address
    confirmation_sent: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class SuppressionReason(StrEnum):
    UNSUBSCRIBED = "unsubscribed"
    HARD_BOUNCE = "hard_bounce"
    COMPLAINT = "complaint"
    OPERATOR = "operator"
    ERASED = "erased"  # the reader's data was erased: only a hash of the address is kept


class Suppression(Base):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A lower-cased address ("a@b.org"), a whole domain ("@b.org"), or the hash of an erased
    # reader's address ("sha256:<hex>", see digest.subscribers.suppression.address_hash).
    value: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ConsentAction(StrEnum):
    SIGNUP = "signup"  # asked to subscribe (double opt-in pending)
    CONFIRMED = "confirmed"  # followed the confirmation link
    ADDED = "added"  # added as confirmed by an operator (CLI, CSV import, API)
    PREFERENCES = "preferences"  # changed their choices (or paused / resumed)
    UNSUBSCRIBED = "unsubscribed"


class ConsentMethod(StrEnum):
    FORM = "form"  # a public page: sign-up, confirmation link, preference centre, unsubscribe page
    ONE_CLICK = "one-click"  # RFC 8058 POST from the mail client
    EMAIL = "email"  # mail to the List-Unsubscribe mailto address
    IMPORT = "import"  # CSV import
    API = "api"  # the JSON API, on an operator's key
    OPERATOR = "operator"  # the CLI, or an editor in the dashboard (the event's detail names the editor)
    PROVIDER = "provider"  # the email provider (complaint, unsubscribe at the provider)


class ConsentEvent(Base):
    """One opt-in or change of a subscriber's consent: when, what, how and from where.

    ``detail`` is JSON: the choices in force after the change (specialties, cadence, edition...).
    """

    __tablename__ = "consent_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    action: Mapped[str] = mapped_column(String(32))
    method: Mapped[str] = mapped_column(String(32))
    ip: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(Text)
