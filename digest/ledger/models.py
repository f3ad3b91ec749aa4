"""Issues and the delivery ledger: one row per (issue, subscriber), and the summaries it carried.

What a delivery carries is a Selection: an ordered list of summaries chosen once per planning group
(subscribers with the same specialties, edition and "since" get the same list) and shared by every
delivery of that group, so 100k deliveries point at a few thousand lists instead of writing 800k
item rows. Read them through ``digest.ledger.carried``.
"""

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
    CORRECTION = "correction"  # a correction or retraction notice to the readers of an earlier version
    ALERT = "alert"  # an urgent safety alert, outside the readers' cadence


class IssueStatus(StrEnum):
    DRAFT = "draft"
    SCHEDULED = "scheduled"
    SENDING = "sending"
    PAUSED = "paused"
    SENT = "sent"
    CANCELLED = "cancelled"


class DeliveryStatus(StrEnum):
    PENDING = "pending"  # planned, not yet sent (a batch being sent holds its rows locked)
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
    # Why a paused issue is paused, and by whom: NULL (an editor) or "transport" (the transport
    # circuit, digest/delivery/circuit.py, which resumes it when a probe succeeds).
    paused_by: Mapped[str | None] = mapped_column(String(16))
    pause_reason: Mapped[str | None] = mapped_column(Text)


class Delivery(Base):
    """One message to one subscriber for one issue; its state machine is the exactly-once ledger."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("issue_id", "subscriber_id"),
        # Period first: a period's entries are adjacent, so planning a day appends to a few leaf
        # pages instead of touching one page per reader across a year of history (docs/scaling.md).
        UniqueConstraint("period_key", "subscriber_id"),
        one_of("status", DeliveryStatus),
        Index("ix_deliveries_issue_status", "issue_id", "status"),
        # A tenth of each page kept free: a day's small pending rows never fill the leftovers of
        # history's pages, one random page each, but are appended (migration 0022).
        {"postgresql_with": {"fillfactor": 90}},
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign keys on this table's references (issue, subscriber, selection): each check took an
    # index probe and a row lock per row planned, half of planning a million readers (docs/scaling.md).
    # Planning inserts the rows from the issue, subscribers and selections it reads in the same
    # transaction, and none of those rows is deleted while a delivery points at it: an issue with
    # rows is never deleted (``digest prune`` deletes its rows and keeps it), subscribers are never
    # deleted (erasure anonymises the row and keeps it, digest/rights.py), and a list is deleted only
    # when no delivery points at it (``drop_unused_lists``, and ``digest prune`` after the rows).
    issue_id: Mapped[int] = mapped_column(Integer)
    # No index leads with it: a reader's rows are reached issue by issue through (issue_id,
    # subscriber_id), see digest.ledger.readers (an index per reader would be written at random).
    subscriber_id: Mapped[int] = mapped_column(Integer)
    # Cadence period served ("daily:2026-11-27", "weekly:2026-W48"); NULL for editor campaigns.
    period_key: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16), default=DeliveryStatus.PENDING)
    variant_key: Mapped[str] = mapped_column(String(64), default="")
    # The summaries it carries (NULL: a row from before migration 0007 that carried nothing).
    selection_id: Mapped[int | None] = mapped_column(Integer, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # send attempts (batches that took the row)
    message_id: Mapped[str | None] = mapped_column(String(255))
    provider_message_id: Mapped[str | None] = mapped_column(String(255), index=True)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class Selection(Base):
    """An ordered list of summaries, chosen once for every delivery of the issue that carries it.

    ``key`` names what it was chosen for inside its issue (planning joins on it): the specialty
    set, edition and "since" of a group of subscribers, or one subscriber whose history called for
    a list of their own.
    """

    __tablename__ = "selections"
    __table_args__ = (UniqueConstraint("issue_id", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(Text)


class SelectionItem(Base):
    """A summary of a selection, at its position in the message (1 = first)."""

    __tablename__ = "selection_items"

    selection_id: Mapped[int] = mapped_column(ForeignKey("selections.id", ondelete="CASCADE"), primary_key=True)
    # Indexed: "was this summary carried to them before" starts from the summary.
    summary_id: Mapped[str] = mapped_column(
        ForeignKey("summaries.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    position: Mapped[int] = mapped_column(Integer)


class DigestFlow(Base):
    """The automatic cadence digests' switch: one row (id 1). While ``paused`` the dispatcher plans
    no digest period (campaigns are paused one by one on their own issue). No row means running."""

    __tablename__ = "digest_flow"

    id: Mapped[int] = mapped_column(primary_key=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    editor_id: Mapped[int | None] = mapped_column(ForeignKey("editors.id", ondelete="SET NULL"))


class CarriedVersion(Base):
    """The version of each summary a rendered variant carried, and in which edition: deliveries
    record their ``variant_key`` when taken, so "who received version k of summary S" is a join,
    written once per variant (a few per send) rather than once per delivery."""

    __tablename__ = "carried_versions"

    variant_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    summary_id: Mapped[str] = mapped_column(
        ForeignKey("summaries.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    edition: Mapped[str] = mapped_column(String(16))


class IssueFigures(Base):
    """The figures of an issue whose deliveries were pruned (``digest prune``; digest/issues/retention.py),
    as ``digest.issues.figures`` computed them just before. Written in the transaction that also
    adds the issue's sends and clicks to ``summary_figures``, so each issue is counted once;
    ``deleted_at`` is set when its last ledger row is gone (until then a prune resumes deleting)."""

    __tablename__ = "issue_figures"

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True)
    recipients: Mapped[int] = mapped_column(Integer)
    sent: Mapped[int] = mapped_column(Integer)
    failed: Mapped[int] = mapped_column(Integer)
    cancelled: Mapped[int] = mapped_column(Integer)
    pending: Mapped[int] = mapped_column(Integer)
    bounced: Mapped[int] = mapped_column(Integer)
    complaints: Mapped[int] = mapped_column(Integer)
    unsubscribes: Mapped[int] = mapped_column(Integer)
    clicks: Mapped[int] = mapped_column(Integer)
    unique_clicks: Mapped[int] = mapped_column(Integer)
    summarised_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime())


class IssueFigurePoint(Base):
    """Messages sent and clicks of a pruned issue per hour (the figures page's timeline)."""

    __tablename__ = "issue_figure_points"

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    sent: Mapped[int] = mapped_column(Integer)
    clicks: Mapped[int] = mapped_column(Integer)


class SummaryFigures(Base):
    """Per summary, what pruned issues did with it: messages that carried it and clicks on it
    (``digest.issues.figures.summary_reach`` adds what the live ledger still holds)."""

    __tablename__ = "summary_figures"

    summary_id: Mapped[str] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"), primary_key=True)
    sends: Mapped[int] = mapped_column(Integer, default=0)
    clicks: Mapped[int] = mapped_column(Integer, default=0)
