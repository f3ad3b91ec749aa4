"""What an editor's campaign carries besides the Issue row: its audience, its pinned summaries,
and the click-throughs its links produced."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, ForeignKey, Integer, String, Table
from sqlalchemy.orm import Mapped, mapped_column

from digest.db import Base, UTCDateTime, utcnow

# The chosen specialties of an issue whose audience is not "all".
issue_specialties = Table(
    "issue_specialties",
    Base.metadata,
    Column("issue_id", ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True),
    Column("specialty_id", ForeignKey("specialties.id", ondelete="CASCADE"), primary_key=True),
)


class IssuePin(Base):
    """A summary every recipient of the issue gets, before their own new summaries."""

    __tablename__ = "issue_pins"

    issue_id: Mapped[int] = mapped_column(ForeignKey("issues.id", ondelete="CASCADE"), primary_key=True)
    summary_id: Mapped[str] = mapped_column(ForeignKey("summaries.id", ondelete="CASCADE"), primary_key=True)
    position: Mapped[int] = mapped_column(Integer)


class Click(Base):
    """One follow of a tracked link (``/r/{token}``) from one delivery."""

    __tablename__ = "clicks"

    id: Mapped[int] = mapped_column(primary_key=True)
    delivery_id: Mapped[int] = mapped_column(ForeignKey("deliveries.id", ondelete="CASCADE"), index=True)
    url: Mapped[str] = mapped_column(String(2000))
    at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
