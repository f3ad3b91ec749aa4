"""API keys: random, shown once, stored as SHA-256 (a key is 256 random bits, so a fast hash is
enough: there is nothing to brute-force), each with the scopes it may use.

A key reads ``dg_<prefix>_<secret>``; the prefix (``dg_<8 chars>``) is stored in clear and shown in
lists, so an operator can tell keys apart and revoke one without ever seeing it again.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from digest.errors import Invalid
from digest.i18n import N_
from digest.integrations.models import ApiKey

SCOPES = {
    "summaries:write": N_("import summaries (POST /api/summaries)"),
    "summaries:read": N_("read summaries and their versions"),
    "subscribers:read": N_("list, read and export subscribers"),
    "subscribers:write": N_("create, update, unsubscribe and erase subscribers"),
    "issues:read": N_("read issues and their figures"),
    "webhooks:write": N_("register, list and remove webhook endpoints; read their deliveries"),
}
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per key


class UnknownScope(Invalid):
    """Scopes that are none, or no scope at all (a ``ValueError``, as before)."""


def check_scopes(scopes: list[str]) -> list[str]:
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown:
        raise UnknownScope(
            N_("unknown scope(s) %(scopes)s; known: %(known)s"), scopes=", ".join(unknown), known=", ".join(SCOPES)
        )
    if not scopes:
        raise UnknownScope(N_("give at least one scope: %(known)s"), known=", ".join(SCOPES))
    return sorted(set(scopes))


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, scopes: list[str], name: str, now: datetime) -> tuple[ApiKey, str]:
    """A new key with these scopes; returns the row and the key itself (shown once, never stored)."""
    scopes = check_scopes(scopes)
    prefix = "dg_" + secrets.token_hex(4)
    key = f"{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        name=name.strip()[:200], prefix=prefix, key_hash=key_hash(key), scopes=" ".join(scopes), created_at=now
    )
    session.add(row)
    session.flush()
    return row, key


def authenticate(session: Session, presented: str, now: datetime) -> ApiKey | None:
    """The live key ``presented`` is, or None (unknown or revoked)."""
    if not presented.startswith("dg_") or len(presented) > 200:
        return None
    digest = key_hash(presented)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == digest, ApiKey.revoked_at.is_(None)))
    if row is None or not hmac.compare_digest(row.key_hash, digest):
        return None
    if row.last_used_at is None or now - row.last_used_at > _TOUCH_EVERY:
        row.last_used_at = now
    return row


def scopes_of(row: ApiKey) -> set[str]:
    return set(row.scopes.split())


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at, ApiKey.id)))


def revoke_key(session: Session, prefix: str, now: datetime) -> bool:
    """Revoke the key with this prefix (or id); False if there is no such live key."""
    match = ApiKey.prefix == prefix
    if prefix.isdigit():
        match = or_(match, ApiKey.id == int(prefix))
    result = session.connection().execute(
        update(ApiKey)
        .where(match, ApiKey.revoked_at.is_(None))
        .values(revoked_at=now)
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)
