"""Editor accounts in Chromium at 375 and 1280 px against the real app and a real SMTP server:
invite an editor, who opens the emailed link and chooses a password; reset a forgotten password
from the login page; disable an account. Every page fits the width with no target under 44 px."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from playwright.sync_api import Page

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.editors.service import EditorIn, create_editor
from tests.browser.a11y import audit, describe
from tests.browser.conftest import Live, Scheme
from tests.browser.targets import assert_fits

PASSWORD = "a long editor password"


def _link(live: Live, smtp_sink: SMTPSink, to: str) -> str:
    msg = [m for m in smtp_sink.messages if m["To"] == to][-1]  # the latest
    found = re.search(re.escape(live.url) + r"/editor/password/\w+/[\w.\-]+", msg.get_body(("plain",)).get_content())
    assert found
    return found.group(0)


def _log_in(page: Page, live: Live, email: str, password: str) -> None:
    page.goto(f"{live.url}/editor/login")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("button:has-text('Log in')")


@pytest.mark.parametrize("width", [375, 1280])
def test_invite_reset_disable(
    live: Live, new_page: Callable[[int, Scheme], Page], smtp_sink: SMTPSink, width: int
) -> None:
    with session_scope(live.services.sessions) as s:
        create_editor(s, EditorIn("editor@example.org", PASSWORD, "Europe/Berlin"))
    page = new_page(width)
    _log_in(page, live, "editor@example.org", PASSWORD)
    page.wait_for_url(f"{live.url}/editor/issues")

    # Invite.
    page.click("nav >> text=Editors")
    page.fill("#invite-email", "colleague@example.org")
    page.select_option("#invite-zone", "Europe/Paris")
    page.click("button:has-text('Send the invitation')")
    page.wait_for_load_state()
    assert "An invitation went to colleague@example.org" in page.inner_text("#notice")
    assert page.inner_text('tr[data-email="colleague@example.org"] .state') == "invited"
    assert_fits(page, width, "editors page")
    assert not (found := audit(page)), describe(found)
    live.shot(page, f"accounts-editors-{width}")

    # The colleague opens the link in their own browser and chooses a password.
    colleague = new_page(width)
    colleague.goto(_link(live, smtp_sink, "colleague@example.org"))
    assert colleague.inner_text("#account") == "colleague@example.org"
    assert_fits(colleague, width, "choose-password page")
    colleague.fill("#password", "short")
    colleague.fill("#password_again", "short")
    colleague.evaluate("document.querySelector('#password').removeAttribute('minlength')")
    colleague.click("button:has-text('Save the password')")
    assert "at least 12 characters" in colleague.inner_text("#password-error")
    colleague.fill("#password", "the colleague's password")
    colleague.fill("#password_again", "the colleague's password")
    assert not (found := audit(colleague)), describe(found)
    live.shot(colleague, f"accounts-choose-password-{width}")
    colleague.click("button:has-text('Save the password')")
    colleague.wait_for_url(f"{live.url}/editor/issues")
    assert "Log out colleague@example.org" in colleague.inner_text("nav")

    # Forgotten password: a reset link from the login page.
    other = new_page(width)
    other.goto(f"{live.url}/editor/login")
    assert_fits(other, width, "login page")
    other.click("text=Forgot your password?")
    other.fill("#email", "colleague@example.org")
    assert_fits(other, width, "reset page")
    other.click("button:has-text('Email me a reset link')")
    assert "If colleague@example.org has an editor account" in other.inner_text("#reset-sent")
    live.shot(other, f"accounts-reset-sent-{width}")
    assert smtp_sink.messages[-1]["Subject"].startswith("Reset your")
    other.goto(_link(live, smtp_sink, "colleague@example.org"))
    other.fill("#password", "a new colleague password")
    other.fill("#password_again", "a new colleague password")
    other.click("button:has-text('Save the password')")
    other.wait_for_url(f"{live.url}/editor/issues")

    # Disable the colleague: their open sessions stop, logging in fails.
    page.goto(f"{live.url}/editor/editors")
    page.click('tr[data-email="colleague@example.org"] >> text=Disable…')
    assert "colleague@example.org will not be able to log in" in page.inner_text("#confirm-message")
    page.click("button:has-text('Yes, disable')")
    page.wait_for_load_state()
    assert page.inner_text('tr[data-email="colleague@example.org"] .state') == "disabled"
    colleague.goto(f"{live.url}/editor/issues")
    assert colleague.url.startswith(f"{live.url}/editor/login")
    _log_in(colleague, live, "colleague@example.org", "a new colleague password")
    assert "This account is disabled" in colleague.inner_text("#login-error")  # the right password learns it
