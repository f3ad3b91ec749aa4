"""Editor sessions and CSRF tokens: a signed, expiring cookie (no server-side session table).

The cookie holds the editor's id (None before login) and a random per-session CSRF token, signed
with the secret key (itsdangerous), so it cannot be forged or altered. It is HttpOnly, SameSite=Lax
and Secure when ``DIGEST_BASE_URL`` is https; it expires after ``SESSION_MAX_AGE``. Every form
carries the CSRF token in a hidden field and every POST under /editor must send it back
(``check_csrf``): a missing or wrong token is 403 before anything is read or written. Logging in
starts a fresh session (new token), so a token seen before login is useless afterwards. The
cookie also carries the account's ``session_version``: logout, a password change or disabling the
account raise it in the database, and every cookie with an older version is refused from then on.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from datetime import timedelta

from fastapi import HTTPException, Request, Response
from itsdangerous import BadData, URLSafeTimedSerializer

COOKIE = "digest_editor"
SESSION_MAX_AGE = timedelta(hours=12)
CSRF_FIELD = "csrf_token"


@dataclass(frozen=True)
class EditorSession:
    editor_id: int | None
    csrf: str
    version: int = 0  # the account's session_version when the session began


class SessionCookies:
    def __init__(
        self, secret_key: str, old_keys: list[str] | None, *, secure: bool, max_age: timedelta = SESSION_MAX_AGE
    ):
        self._serializer = URLSafeTimedSerializer([*(old_keys or []), secret_key], salt="digest.editor.session")
        self.secure = secure
        self.max_age = max_age

    def read(self, request: Request) -> EditorSession | None:
        """The session the request's cookie carries, or None when absent, forged or expired."""
        raw = request.cookies.get(COOKIE)
        if not raw:
            return None
        try:
            data = self._serializer.loads(raw, max_age=int(self.max_age.total_seconds()))
        except (BadData, UnicodeError, ValueError):
            return None
        if not isinstance(data, dict) or not isinstance(data.get("c"), str):
            return None
        editor_id, version = data.get("e"), data.get("v", 0)
        if (editor_id is not None and not _is_int(editor_id)) or not _is_int(version):
            return None
        return EditorSession(editor_id, data["c"], version)

    @staticmethod
    def new(editor_id: int | None, version: int = 0) -> EditorSession:
        """A fresh session with a new CSRF token (``save`` it on the response)."""
        return EditorSession(editor_id, secrets.token_urlsafe(32), version)

    def save(self, response: Response, session: EditorSession) -> None:
        response.set_cookie(
            COOKIE,
            self._serializer.dumps({"e": session.editor_id, "c": session.csrf, "v": session.version}),
            max_age=int(self.max_age.total_seconds()),
            path="/",
            httponly=True,
            samesite="lax",
            secure=self.secure,
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE, path="/", httponly=True, samesite="lax", secure=self.secure)


class CsrfFailed(HTTPException):
    """A form posted without its session's CSRF token: 403, the "form has expired" page."""

    def __init__(self) -> None:
        super().__init__(status_code=403, detail="missing or wrong CSRF token: reload the page and try again")


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def csrf_matches(session: EditorSession | None, sent: object) -> bool:
    return session is not None and isinstance(sent, str) and bool(sent) and hmac.compare_digest(session.csrf, sent)


async def check_csrf(request: Request, session: EditorSession | None) -> None:
    """403 unless a POST's form carries the session's CSRF token (other methods pass)."""
    if request.method != "POST":
        return
    form = await request.form()  # Starlette caches it: the route's Form() parameters read the same
    if not csrf_matches(session, form.get(CSRF_FIELD)):
        raise CsrfFailed()
