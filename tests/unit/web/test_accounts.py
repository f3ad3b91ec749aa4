"""Editor accounts from the dashboard through HTTP and a real SMTP server: an invitation email
whose link sets a password once, a reset link requested on the login page (same answer for
unknown addresses), and disabling an account (its session stops, it cannot log in)."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.editors.models import Editor
from digest.wiring import Services
from tests.unit.web.conftest import EditorAccount, csrf_of, log_in

LINK = re.compile(r"https://digest\.example\.org(/editor/password/(?:invite|reset)/[A-Za-z0-9_.\-]+)")


def _link(smtp_sink: SMTPSink, to: str) -> str:
    (msg,) = [m for m in smtp_sink.messages if m["To"] == to]
    found = LINK.search(msg.get_body(("plain",)).get_content())
    assert found, "the email carries no password link"
    return found.group(1)


def _choose(client: TestClient, path: str, password: str, again: str | None = None):  # type: ignore[no-untyped-def]
    form = client.get(path)
    assert form.status_code == 200, form.text
    return client.post(
        path, data={"password": password, "password_again": again or password, "csrf_token": csrf_of(form.text)}
    )


def test_invitation_sets_a_password_once(
    editor_client: TestClient, anonymous_second: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    page = editor_client.get("/editor/editors")
    sent = editor_client.post(
        "/editor/editors/invite",
        data={"email": "New.Editor@example.org", "timezone": "Europe/Paris", "csrf_token": csrf_of(page.text)},
    )
    assert sent.status_code == 200 and "An invitation went to new.editor@example.org" in sent.text
    (msg,) = smtp_sink.messages
    assert (
        msg["Subject"].startswith("You are invited to edit")
        and "ed@example.org invited you" in msg.get_body(("plain",)).get_content()
    )
    assert "List-Unsubscribe" not in msg
    path = _link(smtp_sink, "new.editor@example.org")
    assert log_in(anonymous_second, "new.editor@example.org", "").status_code == 401  # no usable password yet

    short = _choose(anonymous_second, path, "short")
    assert short.status_code == 400 and "at least 12 characters" in short.text
    differ = _choose(anonymous_second, path, "a long new password", "another long password")
    assert differ.status_code == 400 and "differ" in differ.text
    done = _choose(anonymous_second, path, "a long new password")
    assert done.status_code == 303 and done.headers["location"] == "/editor/issues"
    assert anonymous_second.get("/editor/issues").status_code == 200  # logged in
    assert anonymous_second.get(path).status_code == 400  # the link worked once
    with session_scope(services.sessions) as s:
        editor = s.scalar(select(Editor).where(Editor.email == "new.editor@example.org"))
        assert editor is not None and editor.timezone == "Europe/Paris"


def test_reset_link_by_email_and_the_same_answer_for_unknown_addresses(
    anonymous: TestClient, editor_account: EditorAccount, smtp_sink: SMTPSink
) -> None:
    form = anonymous.get("/editor/login")
    assert 'href="/editor/password-reset"' in form.text
    ask = anonymous.get("/editor/password-reset")
    unknown = anonymous.post(
        "/editor/password-reset", data={"email": "nobody@example.org", "csrf_token": csrf_of(ask.text)}
    )
    known = anonymous.post(
        "/editor/password-reset", data={"email": editor_account.email, "csrf_token": csrf_of(ask.text)}
    )
    # The address typed and each response's CSP nonce are the only differences allowed.
    strip = lambda html: re.sub(r'nobody@example\.org|ed@example\.org|nonce="[^"]*"', "X", html)  # noqa: E731
    assert strip(unknown.text) == strip(known.text) and unknown.status_code == known.status_code == 200
    assert [m["To"] for m in smtp_sink.messages] == [editor_account.email]
    path = _link(smtp_sink, editor_account.email)
    assert "/editor/password/reset/" in path
    assert anonymous.post(path, data={"password": "x" * 12, "password_again": "x" * 12}).status_code == 403  # CSRF
    assert _choose(anonymous, path, "a brand new password").status_code == 303
    assert log_in(anonymous, editor_account.email, editor_account.password).status_code == 401
    assert log_in(anonymous, editor_account.email, "a brand new password").status_code == 303


def test_disabling_an_account_ends_its_session_and_its_logins(
    editor_client: TestClient, anonymous_second: TestClient, services: Services
) -> None:
    from digest.editors.service import EditorIn, create_editor

    with session_scope(services.sessions) as s:
        other = create_editor(s, EditorIn("other@example.org", "another long password")).id
    assert log_in(anonymous_second, "other@example.org", "another long password").status_code == 303
    assert anonymous_second.get("/editor/issues").status_code == 200
    ask = editor_client.get(f"/editor/editors/{other}/confirm/disable")
    assert "other@example.org will not be able to log in" in ask.text
    done = editor_client.post(f"/editor/editors/{other}/disable", data={"csrf_token": csrf_of(ask.text)})
    assert done.status_code == 200 and "other@example.org is disabled." in done.text
    assert anonymous_second.get("/editor/issues").status_code == 303  # the open session stopped
    assert (
        log_in(anonymous_second, "other@example.org", "another long password").status_code == 403
    )  # the right password learns it is disabled (a wrong one gets 401)
    me = editor_client.get("/editor/editors")
    mine = re.search(r'<tr data-email="ed@example.org">.*?</tr>', me.text, re.S)
    assert mine and "Disable" not in mine.group(0)
    own = editor_client.post(
        f"/editor/editors/{_id(services, 'ed@example.org')}/disable", data={"csrf_token": csrf_of(me.text)}
    )
    assert own.status_code == 409
    editor_client.post(f"/editor/editors/{other}/enable", data={"csrf_token": csrf_of(me.text)})
    assert log_in(anonymous_second, "other@example.org", "another long password").status_code == 303


def _id(services: Services, email: str) -> int:
    with session_scope(services.sessions) as s:
        found = s.scalar(select(Editor.id).where(Editor.email == email))
        assert found is not None
        return found
