"""Specialties and evidence summaries."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Column,
    ForeignKey,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from digest.db import Base, UTCDateTime, utcnow

summary_specialties = Table(
    "summary_specialties",
    Base.metadata,
    Column("summary_id", ForeignKey("summaries.id", ondelete="CASCADE"), primary_key=True),
    Column("specialty_id", ForeignKey("specialties.id", ondelete="CASCADE"), primary_key=True, index=True),
)


class Specialty(Base):
    __tablename__ = "specialties"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(64), unique=True)
    name: Mapped[str] = mapped_column(String(128))

    def __repr__(self) -> str:
        return f"Specialty({self.slug!r})"


class SummaryStatus(StrEnum):
    PUBLISHED = "published"
    CORRECTED = "corrected"  # a material error was corrected upstream (``correction_note`` says what)
    RETRACTED = "retracted"  # the study or summary was withdrawn: never selected again


class Summary(Base):
    """One evidence summary of a published study, as written upstream (its current version; the
    earlier ones are in ``summary_versions``)."""

    __tablename__ = "summaries"

    id: Mapped[str] = mapped_column(String(200), primary_key=True)
    title: Mapped[str] = mapped_column(String(500))
    key_takeaway: Mapped[str] = mapped_column(Text)
    summary: Mapped[str | None] = mapped_column(Text)
    patient_summary: Mapped[str | None] = mapped_column(Text)
    # The title in plain words for the patient edition (its subject and headings); None: ``title``.
    patient_title: Mapped[str | None] = mapped_column(String(500))
    study_type: Mapped[str | None] = mapped_column(String(100))
    sample_size: Mapped[int | None] = mapped_column(Integer)
    evidence_level: Mapped[int | None] = mapped_column(Integer)
    study_published: Mapped[str | None] = mapped_column(String(32))
    outcomes: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    safety: Mapped[str | None] = mapped_column(Text)
    source_url: Mapped[str | None] = mapped_column(String(2000))
    # The language the summary is written in (never translated); selection prefers the reader's.
    language: Mapped[str] = mapped_column(String(8), default="en", server_default="en")
    published_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow, onupdate=utcnow)
    # Bumped by every ingest that changes the record (digest/ingest/versions.py); deliveries record
    # the version they carried (ledger ``carried_versions``).
    version: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # A SummaryStatus (checked by the record schema).
    status: Mapped[str] = mapped_column(String(16), default=SummaryStatus.PUBLISHED, server_default="published")
    correction_note: Mapped[str | None] = mapped_column(Text)

    specialties: Mapped[list[Specialty]] = relationship(
        secondary=summary_specialties, lazy="selectin", order_by=Specialty.slug
    )

    def __repr__(self) -> str:
        return f"Summary({self.id!r})"


class SummaryVersion(Base):
    """One version of a summary: what changed from the one before, when, why, and whether readers
    of the earlier version must be told (``material``; ``severe``: on its own, not folded)."""

    __tablename__ = "summary_versions"
    __table_args__ = (UniqueConstraint("summary_id", "version"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    summary_id: Mapped[str] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changed: Mapped[list[str]] = mapped_column(JSON, default=list)  # record fields, e.g. ["key_takeaway"]
    # The changed fields' values before this version, for the summary's history page.
    previous: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    material: Mapped[bool] = mapped_column(Boolean, default=False)
    severe: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16), default=SummaryStatus.PUBLISHED)
    note: Mapped[str | None] = mapped_column(Text)  # the record's correction_note, if any
    urgent: Mapped[bool] = mapped_column(Boolean, default=False)  # the record asked for a safety alert
    # False until digest/corrections/review.py has opened what this version calls for (a correction,
    # a safety alert); the send cycle and the corrections pages review before they act.
    reviewed: Mapped[bool] = mapped_column(Boolean, default=False, index=True)


class FeedStatus(StrEnum):
    NEW = "new"  # added, never polled
    OK = "ok"  # last poll fetched (or was told nothing changed) and imported every entry
    PARTIAL = "partial"  # last poll imported the valid entries; ``last_error`` lists the others
    ERROR = "error"  # last poll failed (network, HTTP status, unparseable); nothing was imported


class FeedSource(Base):
    """An RSS, Atom or JSON Feed URL polled for summaries, with what conditional GET needs."""

    __tablename__ = "feed_sources"
    __table_args__ = (CheckConstraint(f"status IN ({', '.join(repr(s.value) for s in FeedStatus)})", name="status"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000), unique=True)
    # Specialty slugs for entries whose categories name none of the known specialties.
    specialties: Mapped[list[str]] = mapped_column(JSON, default=list)
    etag: Mapped[str | None] = mapped_column(String(500))
    last_modified: Mapped[str | None] = mapped_column(String(100))
    last_polled_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default=FeedStatus.NEW)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    def __repr__(self) -> str:
        return f"FeedSource({self.url!r})"
