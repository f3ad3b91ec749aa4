"""Editor accounts (argon2 password hashes, disabled flag, session version)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from digest.db import Base, UTCDateTime, utcnow


class Editor(Base):
    __tablename__ = "editors"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(320), unique=True)
    password_hash: Mapped[str] = mapped_column(String(255))
    # The zone the editor thinks in: send times they type are local to it.
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_login_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    # A disabled account cannot log in; its sessions ended when it was disabled.
    disabled: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    # Carried in the session cookie; raised at logout, password change and disable, which ends
    # every session issued before.
    session_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")

    def __repr__(self) -> str:
        return f"Editor({self.email!r})"
