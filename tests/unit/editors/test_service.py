"""Editor accounts: argon2 hashes, validation, no lockout, disable/enable, password changes that
end sessions."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from digest.db import session_scope
from digest.editors.models import Editor
from digest.editors.service import (
    AccountDisabled,
    EditorError,
    EditorIn,
    LoginFailed,
    authenticate,
    create_editor,
    end_sessions,
    list_editors,
    set_disabled,
    set_password,
)
from digest.wiring import Services
from tests.conftest import Clock

PASSWORD = "correct horse battery"


def _editor(services: Services) -> Editor:
    with session_scope(services.sessions) as s:
        row = s.scalars(select(Editor)).one()
        s.expunge(row)
        return row


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


def test_no_lockout_the_right_password_works_after_many_wrong_ones(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        create_editor(s, EditorIn("ed@example.org", PASSWORD))
    for _ in range(20):
        with session_scope(services.sessions) as s, pytest.raises(LoginFailed, match="wrong email address or password"):
            authenticate(s, "ed@example.org", "wrong password!", clock())
    with session_scope(services.sessions) as s, pytest.raises(LoginFailed, match="wrong email address or password"):
        authenticate(s, "nobody@example.org", PASSWORD, clock())
    with session_scope(services.sessions) as s:
        assert authenticate(s, "ED@example.org", PASSWORD, clock()).email == "ed@example.org"
    assert _editor(services).last_login_at == clock()


def test_disable_enable_and_password_change_raise_the_session_version(services: Services, clock: Clock) -> None:
    with session_scope(services.sessions) as s:
        create_editor(s, EditorIn("ed@example.org", PASSWORD))
    with session_scope(services.sessions) as s:
        set_disabled(s, "ed@example.org", True)
    assert _editor(services).disabled and _editor(services).session_version == 1
    with session_scope(services.sessions) as s, pytest.raises(AccountDisabled):
        authenticate(s, "ed@example.org", PASSWORD, clock())
    with session_scope(services.sessions) as s, pytest.raises(LoginFailed) as wrong:
        authenticate(s, "ed@example.org", "wrong password!", clock())
    assert not isinstance(wrong.value, AccountDisabled)  # only the right password learns it is disabled
    with session_scope(services.sessions) as s:
        set_disabled(s, "ed@example.org", False)
        set_password(s, "ed@example.org", "a new long password")
    assert _editor(services).session_version == 2
    with session_scope(services.sessions) as s:
        assert authenticate(s, "ed@example.org", "a new long password", clock())
        end_sessions(s, _editor(services).id)
    assert _editor(services).session_version == 3
    with session_scope(services.sessions) as s:
        with pytest.raises(EditorError, match="at least 12"):
            set_password(s, "ed@example.org", "short")
        with pytest.raises(EditorError, match=r"no editor with the address x@example.org"):
            set_disabled(s, "X@example.org", True)
        assert [e.email for e in list_editors(s)] == ["ed@example.org"]
