"""Editor accounts: argon2 hashes, validation, throttled logins."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from digest.db import session_scope
from digest.editors.models import Editor
from digest.editors.service import (
    MAX_FAILED_LOGINS,
    EditorError,
    EditorIn,
    LoginFailed,
    LoginLocked,
    authenticate,
    create_editor,
)
from digest.wiring import Services
from tests.conftest import Clock

PASSWORD = "correct horse battery"


def test_create_hashes_with_argon2_and_rejects_bad_input(services: Services) -> None:
    with session_scope(services.sessions) as s:
        editor = create_editor(s, EditorIn("Ed@Example.org", PASSWORD, "Europe/Berlin"))
        assert editor.email == "ed@example.org" and editor.password_hash.startswith("$argon2id$")
        assert PASSWORD not in editor.password_hash
    with session_scope(services.sessions) as s:
        for bad, message in [
            (EditorIn("ed@example.org", PASSWORD), "already exists"),
            (EditorIn("not-an-address", PASSWORD), "invalid email"),
            (EditorIn("x@example.org", "short"), "at least 12"),
            (EditorIn("x@example.org", PASSWORD, "Mars/Olympus"), "unknown time zone"),
        ]:
            with pytest.raises(EditorError, match=message):
                create_editor(s, bad)


def test_login_throttling_locks_and_unlocks(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        create_editor(s, EditorIn("ed@example.org", PASSWORD))
    with session_scope(services.sessions) as s:
        assert authenticate(s, "ED@example.org", PASSWORD, clock()).email == "ed@example.org"
        with pytest.raises(LoginFailed):
            authenticate(s, "nobody@example.org", PASSWORD, clock())
    for attempt in range(1, MAX_FAILED_LOGINS + 1):
        with session_scope(services.sessions) as s:
            expected = LoginLocked if attempt == MAX_FAILED_LOGINS else LoginFailed
            with pytest.raises(expected):
                authenticate(s, "ed@example.org", "wrong password!", clock())
    # Locked: even the right password is refused until the lock ends.
    with session_scope(services.sessions) as s, pytest.raises(LoginLocked):
        authenticate(s, "ed@example.org", PASSWORD, clock())
    clock.advance(minutes=16)
    with session_scope(services.sessions) as s:
        assert authenticate(s, "ed@example.org", PASSWORD, clock())
    with session_scope(services.sessions) as s:
        row = s.scalar(select(Editor))
        assert row is not None and row.failed_logins == 0 and row.locked_until is None
        assert row.last_login_at == clock()


def test_repeated_lockouts_grow(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        create_editor(s, EditorIn("ed@example.org", PASSWORD))
    for _ in range(MAX_FAILED_LOGINS):
        with session_scope(services.sessions) as s, pytest.raises(LoginFailed):
            authenticate(s, "ed@example.org", "wrong password!", clock())
    first_until = clock() + timedelta(minutes=15)
    clock.advance(minutes=15, seconds=1)
    with session_scope(services.sessions) as s, pytest.raises(LoginLocked) as locked:
        authenticate(s, "ed@example.org", "wrong password!", clock())
    assert locked.value.until - clock() == timedelta(minutes=30)
    assert locked.value.until > first_until
