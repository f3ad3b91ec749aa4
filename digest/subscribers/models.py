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
        {"postgresql_with": {"fillfactor": 80}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    name: Mapped[str] = mapped_column(String(200), default="")
    cadence: Mapped[str] = mapped_column(String(16), default=Cadence.DAILY)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    send_hour: Mapped[int] = mapped_column(Integer, default=7)
    send_weekday: Mapped[int] = mapped_column(Integer, default=0)
    edition: Mapped[str] = mapped_column(String(16), default=Edition.CLINICIAN)
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


class Suppression(Base):
    __tablename__ = "suppressions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # A lower-cased address ("a@b.org") or a whole domain ("@b.org").
    value: Mapped[str] = mapped_column(String(320), unique=True)
    reason: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
