"""Editor accounts: create, and authenticate with throttling.

Passwords are hashed with argon2id (argon2-cffi's defaults). After ``MAX_FAILED_LOGINS`` wrong
passwords in a row an account is locked for ``LOCKOUT`` (doubling with each further lockout, up to
``MAX_LOCKOUT``); a success resets the count. An unknown address costs a hash verification too, so
the answer time does not tell which addresses have accounts.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.editors.models import Editor
from digest.subscribers.schema import iana_timezones, normalize_email

MIN_PASSWORD_LENGTH = 12
UNUSABLE_PREFIX = "!"  # a password_hash starting with it is no argon2 hash: nothing logs in with it
MAX_FAILED_LOGINS = 5
LOCKOUT = timedelta(minutes=15)
MAX_LOCKOUT = timedelta(hours=24)

_hasher = PasswordHasher()  # argon2id with argon2-cffi's recommended cost


class EditorError(Exception):
    """The account cannot be created as asked; the message says why."""


class LoginFailed(Exception):
    """Wrong address or password (deliberately not saying which)."""


class LoginLocked(LoginFailed):
    """Too many failed logins: the account is locked until ``until``."""

    def __init__(self, until: datetime):
        self.until = until
        super().__init__(f"too many failed logins; try again after {until:%Y-%m-%d %H:%M} UTC")


@dataclass(frozen=True)
class EditorIn:
    email: str
    password: str
    timezone: str = "UTC"


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise EditorError(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")


def create_editor(session: Session, data: EditorIn) -> Editor:
    """Add an editor account; raises EditorError for a bad address, time zone, password or a duplicate."""
    try:
        email = normalize_email(data.email)
    except ValueError as exc:
        raise EditorError(str(exc)) from None
    if data.timezone not in iana_timezones():
        raise EditorError(f"unknown time zone {data.timezone!r}: use an IANA name such as Europe/Berlin")
    validate_password(data.password)
    if session.scalar(select(Editor.id).where(Editor.email == email)) is not None:
        raise EditorError(f"an editor with the address {email} already exists")
    editor = Editor(email=email, password_hash=_hasher.hash(data.password), timezone=data.timezone, failed_logins=0)
    session.add(editor)
    session.flush()
    return editor


def authenticate(session: Session, email: str, password: str, now: datetime) -> Editor:
    """Return the editor if the password is right; raise LoginLocked or LoginFailed otherwise.

    The failed-login count is written in the caller's transaction: commit it even when this raises.
    """
    editor = session.scalar(select(Editor).where(Editor.email == email.strip().lower()).with_for_update())
    if editor is None or editor.disabled:
        _hasher.hash(password)  # as costly as a verification
        raise LoginFailed("wrong email address or password")
    if editor.locked_until is not None and editor.locked_until > now:
        raise LoginLocked(editor.locked_until)
    if not _verify(editor.password_hash, password):
        editor.failed_logins += 1
        if editor.failed_logins >= MAX_FAILED_LOGINS:
            lockouts = editor.failed_logins - MAX_FAILED_LOGINS
            editor.locked_until = now + min(LOCKOUT * 2**lockouts, MAX_LOCKOUT)
            session.flush()
            raise LoginLocked(editor.locked_until)
        session.flush()
        raise LoginFailed("wrong email address or password")
    if _hasher.check_needs_rehash(editor.password_hash):
        editor.password_hash = _hasher.hash(password)
    editor.failed_logins = 0
    editor.locked_until = None
    editor.last_login_at = now
    session.flush()
    return editor


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def get_editor(session: Session, email: str) -> Editor:
    editor = session.scalar(select(Editor).where(Editor.email == email.strip().lower()))
    if editor is None:
        raise EditorError(f"there is no editor {email.strip().lower()}")
    return editor


def list_editors(session: Session) -> list[Editor]:
    return list(session.scalars(select(Editor).order_by(Editor.email)))


def set_disabled(session: Session, email: str, disabled: bool) -> Editor:
    """Disable (or enable again) an account: a disabled one cannot log in, and its sessions stop
    working at their next request."""
    editor = get_editor(session, email)
    editor.disabled = disabled
    session.flush()
    return editor


def set_password(session: Session, email: str, password: str) -> Editor:
    """A new password (checked for length); it also lifts a lock from failed logins."""
    validate_password(password)
    editor = get_editor(session, email)
    editor.password_hash = _hasher.hash(password)
    editor.failed_logins = 0
    editor.locked_until = None
    session.flush()
    return editor


def invite_editor(session: Session, email: str, timezone: str = "UTC") -> Editor:
    """A new account with no usable password: the invitee sets one through a signed link."""
    editor = create_editor(session, EditorIn(email, secrets.token_urlsafe(32), timezone))
    editor.password_hash = UNUSABLE_PREFIX + secrets.token_urlsafe(32)  # no password can match it
    session.flush()
    return editor
