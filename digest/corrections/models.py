"""Corrections: a material change of a summary to tell the readers of its earlier versions."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Boolean, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from digest.db import Base, UTCDateTime, one_of, utcnow


class CorrectionStatus(StrEnum):
    PENDING = "pending"  # waiting for an editor's approval
    APPROVED = "approved"  # approved; the next send cycle plans it
    SENT = "sent"  # planned: a notice issue (standalone) or folded rows for the next digests
    DISMISSED = "dismissed"  # an editor decided nobody needs telling


class CorrectionKind(StrEnum):
    CORRECTION = "correction"
    RETRACTION = "retraction"


class Correction(Base):
    """Tell whoever received an earlier version of ``summary_id`` about ``version``.

    ``standalone``: a notice of its own within the hour after approval (key takeaway, outcomes or
    safety changed, or a retraction); otherwise a "Correction" block folded in at the top of each
    reader's next digest (``FoldedCorrection`` rows). One pending correction per summary: a
    further material change before approval moves it on to the newer version.
    """

    __tablename__ = "corrections"
    __table_args__ = (one_of("status", CorrectionStatus), one_of("kind", CorrectionKind))

    id: Mapped[int] = mapped_column(primary_key=True)
    summary_id: Mapped[str] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16), default=CorrectionKind.CORRECTION)
    standalone: Mapped[bool] = mapped_column(Boolean, default=True)
    changed: Mapped[str] = mapped_column(Text, default="")  # what changed, in words ("key takeaway, outcomes")
    note: Mapped[str] = mapped_column(Text, default="")  # what readers are told; editable until approved
    status: Mapped[str] = mapped_column(String(16), default=CorrectionStatus.PENDING, index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    approved_by: Mapped[str | None] = mapped_column(String(320))
    # The notice issue (standalone): its deliveries, one per (issue, subscriber), make each reader's
    # notice go out once whatever runs again.
    issue_id: Mapped[int | None] = mapped_column(ForeignKey("issues.id", ondelete="SET NULL"), unique=True)


class FoldedCorrection(Base):
    """A lesser correction waiting for (or carried by) one reader's next digest: one row per
    (correction, subscriber), so it is shown once; ``delivery_id`` is the digest that carried it."""

    __tablename__ = "folded_corrections"

    correction_id: Mapped[int] = mapped_column(ForeignKey("corrections.id", ondelete="CASCADE"), primary_key=True)
    subscriber_id: Mapped[int] = mapped_column(
        ForeignKey("subscribers.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    delivery_id: Mapped[int | None] = mapped_column(ForeignKey("deliveries.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
