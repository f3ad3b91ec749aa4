"""Signed links that let someone set an editor password: an invitation (valid for a week) and a
password reset (valid for an hour).

A token is itsdangerous-signed with the secret key (older keys still verify) and a salt per
purpose, so an invitation is no reset link and the other way round. It carries the editor's id and
a fingerprint of their current password hash: setting a password changes the hash, so each link
works once, and an older link stops working when a newer one is used.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from enum import StrEnum

from itsdangerous import BadData, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from digest.editors.models import Editor
from digest.subscribers.tokens import BadToken


class Purpose(StrEnum):
    INVITE = "invite"
    RESET = "reset"


VALID_FOR = {Purpose.INVITE: timedelta(days=7), Purpose.RESET: timedelta(hours=1)}


def _fingerprint(editor: Editor) -> str:
    return hashlib.sha256(editor.password_hash.encode()).hexdigest()[:20]


class PasswordLinks:
    def __init__(self, secret_key: str, old_keys: list[str] | None, base_url: str):
        self._keys = [*(old_keys or []), secret_key]
        self.base_url = base_url.rstrip("/")

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self._keys, salt=f"digest.editor.{purpose.value}")

    def url(self, purpose: Purpose, editor: Editor) -> str:
        token = self._serializer(purpose).dumps({"e": editor.id, "p": _fingerprint(editor)})
        return f"{self.base_url}/editor/password/{purpose.value}/{token}"

    def editor(self, session: Session, purpose: Purpose, token: str) -> Editor:
        """The editor a valid, unused, unexpired link is for; BadToken otherwise (and for disabled accounts)."""
        try:
            data = self._serializer(purpose).loads(token, max_age=int(VALID_FOR[purpose].total_seconds()))
        except (BadData, UnicodeError, ValueError) as exc:
            raise BadToken("password link") from exc
        if not isinstance(data, dict) or not isinstance(data.get("e"), int) or isinstance(data.get("e"), bool):
            raise BadToken("password link")
        editor = session.get(Editor, data["e"])
        if editor is None or editor.disabled or data.get("p") != _fingerprint(editor):
            raise BadToken("password link")
        return editor
