"""Editor accounts: create, authenticate, list, disable, enable, change passwords.

Passwords are hashed with argon2id (argon2-cffi's defaults). There is no lockout: attempts are
throttled per client and per address (``digest.editors.throttle``) and the web app runs the
verification off the event loop. An unknown address costs a hash verification too, so the answer
time does not tell which addresses have accounts. ``session_version`` is carried in the session
cookie: raising it (logout, password change, disable) ends every session of the account.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.editors.models import Editor
from digest.errors import Count, Explained
from digest.i18n import N_
from digest.subscribers.schema import InvalidAddress, iana_timezones, normalize_email

MIN_PASSWORD_LENGTH = 12
UNUSABLE_PREFIX = "!"  # a password_hash starting with it is no argon2 hash: nothing logs in with it

_hasher = PasswordHasher()  # argon2id with argon2-cffi's recommended cost


class EditorError(Explained):
    """The account cannot be created or changed as asked; the message says why."""


class LoginFailed(Exception):
    """Wrong address or password (deliberately not saying which)."""


class AccountDisabled(LoginFailed):
    """The right password for a disabled account (only someone who knows it learns this)."""


@dataclass(frozen=True)
class EditorIn:
    email: str
    password: str
    timezone: str = "UTC"


def validate_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise EditorError(N_("the password must have at least %(count)s characters"), count=Count(MIN_PASSWORD_LENGTH))


def create_editor(session: Session, data: EditorIn) -> Editor:
    """Add an editor account; raises EditorError for a bad address, time zone, password or a duplicate."""
    try:
        email = normalize_email(data.email)
    except InvalidAddress as exc:
        raise EditorError.like(exc) from None
    if data.timezone not in iana_timezones():
        raise EditorError(
            N_("unknown time zone %(zone)s: use an IANA name such as Europe/Berlin"), zone=repr(data.timezone)
        )
    validate_password(data.password)
    if session.scalar(select(Editor.id).where(Editor.email == email)) is not None:
        raise EditorError(N_("an editor with the address %(email)s already exists"), email=email)
    editor = Editor(email=email, password_hash=_hasher.hash(data.password), timezone=data.timezone)
    session.add(editor)
    session.flush()
    return editor


def authenticate(session: Session, email: str, password: str, now: datetime) -> Editor:
    """Return the editor if the password is right; raise LoginFailed (or AccountDisabled) otherwise.
    Costs one argon2 verification (about 50 ms of CPU): call it off the event loop."""
    editor = session.scalar(select(Editor).where(Editor.email == email.strip().lower()))
    if editor is None:
        _hasher.hash(password)  # as costly as a verification
        raise LoginFailed("wrong email address or password")
    if not _verify(editor.password_hash, password):
        raise LoginFailed("wrong email address or password")
    if editor.disabled:
        raise AccountDisabled("this account is disabled")
    if _hasher.check_needs_rehash(editor.password_hash):
        editor.password_hash = _hasher.hash(password)
    editor.last_login_at = now
    session.flush()
    return editor


def get_editor(session: Session, email: str) -> Editor:
    editor = session.scalar(select(Editor).where(Editor.email == email.strip().lower()))
    if editor is None:
        raise EditorError(N_("no editor with the address %(email)s"), email=email.strip().lower())
    return editor


def list_editors(session: Session) -> list[Editor]:
    return list(session.scalars(select(Editor).order_by(Editor.email)))


def set_disabled(session: Session, email: str, disabled: bool) -> Editor:
    """Disable (ending every session) or enable an account."""
    editor = get_editor(session, email)
    editor.disabled = disabled
    if disabled:
        editor.session_version += 1
    session.flush()
    return editor


def set_password(session: Session, email: str, password: str) -> Editor:
    """A new password; every session of the account ends."""
    validate_password(password)
    editor = get_editor(session, email)
    editor.password_hash = _hasher.hash(password)
    editor.session_version += 1
    session.flush()
    return editor


def end_sessions(session: Session, editor_id: int) -> None:
    """Logout: every cookie issued for this account so far stops working."""
    editor = session.get(Editor, editor_id)
    if editor is not None:
        editor.session_version += 1
        session.flush()


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def invite_editor(session: Session, email: str, timezone: str = "UTC") -> Editor:
    """A new account with no usable password: the invitee sets one through a signed link."""
    editor = create_editor(session, EditorIn(email, secrets.token_urlsafe(32), timezone))
    editor.password_hash = UNUSABLE_PREFIX + secrets.token_urlsafe(32)  # no password can match it
    session.flush()
    return editor
