"""Issues and the delivery ledger: one row per (issue, subscriber), with the summaries it carried."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    Boolean,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    true,
)
from sqlalchemy.orm import Mapped, mapped_column

from digest.db import Base, UTCDateTime, one_of, utcnow


class IssueKind(StrEnum):
    DIGEST = "digest"  # a cadence digest: planned by the scheduler for whoever is due
    CAMPAIGN = "campaign"  # composed by an editor


class IssueStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # planned, not yet claimed
    SENDING = "sending"  # claimed by a worker under a lease
    SENT = "sent"  # accepted by the transport; provider id stored
    FAILED = "failed"  # permanent failure (hard bounce, rejected)
    CANCELLED = "cancelled"  # subscriber opted out or was suppressed before it went out



class Issue(Base):
    __tablename__ = "issues"
    __table_args__ = (
        one_of("kind", IssueKind),
        one_of("status", IssueStatus),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=IssueKind.DIGEST)
    status: Mapped[str] = mapped_column(String(16), default=IssueStatus.DRAFT, index=True)
    subject: Mapped[str] = mapped_column(String(300))
    preheader: Mapped[str] = mapped_column(String(300), default="")
    intro: Mapped[str] = mapped_column(Text, default="")
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    planned_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    # The highest delivery id already queued as a chunk task: a planning task that is redelivered
    # (or the next beat tick) carries on from here instead of queueing the whole list again.
    dispatched_through: Mapped[int | None] = mapped_column(Integer)
    # Campaigns (digest/issues): who composed it, the zone its send time was given in, and its
    # audience (all active subscribers, or those in the specialties of ``issue_specialties``).
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))
    timezone: Mapped[str] = mapped_column(String(64), default="UTC", server_default="UTC")
    audience_all: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())
    # When the issue's open rows were last queued as chunk tasks; dispatch_due queues them again
    # only after a lease has passed (lost tasks), not every minute.
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Delivery(Base):
    """One message to one subscriber for one issue; its state machine is the exactly-once ledger."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id"),
        UniqueConstraint("subscriber_id", "period_key"),
        one_of("status", DeliveryStatus),
        Index("ix_deliveries_issue_status", "issue_id", "status"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    subscriber_id: Mapped[int] = mapped_column(ForeignKey("subscribers.id", ondelete="CASCADE"), index=True)
    # Cadence period served ("daily:2026-11-27", "weekly:2026-W48"); NULL for editor campaigns.
    period_key: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    variant_key: Mapped[str] = mapped_column(String(64), default="")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # Random per claim: a worker whose lease ran out (and whose rows another worker reclaimed)
    # finds its token gone and sends nothing.
    claim_token: Mapped[str | None] = mapped_column(String(32))
    message_id: Mapped[str | None] = mapped_column(String(255))
    provider_message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class DeliveryItem(Base):
    """A summary carried by a delivery, in the order it appears in the message."""

    __tablename__ = "delivery_items"

    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True)
    summary_id: Mapped[str] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)
