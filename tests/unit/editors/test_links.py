"""Password links: signed per purpose, valid for a limited time, once, and not for disabled accounts."""

from __future__ import annotations

import pytest

from digest.db import session_scope
from digest.editors.links import PasswordLinks, Purpose
from digest.editors.service import EditorIn, create_editor, set_disabled, set_password
from digest.subscribers.tokens import BadToken
from digest.wiring import Services


def _token(url: str) -> str:
    return url.rsplit("/", 1)[-1]


def test_links_by_purpose_expiry_single_use_and_disabled(services: Services, monkeypatch: pytest.MonkeyPatch) -> None:
    links = PasswordLinks("secret", ["old-secret"], "https://digest.example.org")
    with session_scope(services.sessions) as s:
        editor = create_editor(s, EditorIn("ed@example.org", "a long first password"))
        reset, invite = _token(links.url(Purpose.RESET, editor)), _token(links.url(Purpose.INVITE, editor))
        assert links.editor(s, Purpose.RESET, reset).id == editor.id
        with pytest.raises(BadToken):
            links.editor(s, Purpose.INVITE, reset)  # a reset link is no invitation
        with pytest.raises(BadToken):
            PasswordLinks("another", None, "https://x").editor(s, Purpose.RESET, reset)
        assert PasswordLinks("new-secret", ["secret"], "https://x").editor(s, Purpose.RESET, reset).id == editor.id

        import itsdangerous.timed

        now = itsdangerous.timed.time.time()
        monkeypatch.setattr(itsdangerous.timed.time, "time", lambda: now + 2 * 3600)
        with pytest.raises(BadToken):
            links.editor(s, Purpose.RESET, reset)  # an hour
        assert links.editor(s, Purpose.INVITE, invite).id == editor.id  # a week
        monkeypatch.undo()

        set_password(s, "ed@example.org", "a long second password")
        with pytest.raises(BadToken):
            links.editor(s, Purpose.RESET, reset)  # used (the password changed)
        fresh = _token(links.url(Purpose.RESET, editor))
        set_disabled(s, "ed@example.org", True)
        with pytest.raises(BadToken):
            links.editor(s, Purpose.RESET, fresh)
