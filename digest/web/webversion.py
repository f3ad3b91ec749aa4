"""``GET /web/{token}``: the web version of one message ("View this email in your browser")."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import escape

from digest.db import session_scope
from digest.i18n import N_, translations
from digest.issues.web_version import web_version
from digest.subscribers.tokens import BadToken, Purpose
from digest.web.archive import EMAIL_POLICY
from digest.web.deps import ServicesDep, invalid_link, page, page_gettext

router = APIRouter(tags=["subscribers"], default_response_class=HTMLResponse)

CHANGED_NOTE = N_(
    "A summary in this email, or your choices, changed after it was sent: this page shows them as they are now."
)


def changed_note(locale: str) -> str:
    """The note above a web version that differs from the message, in the message's language."""
    text = escape(translations(locale).gettext(CHANGED_NOTE))
    return (
        f'<p role="note" lang="{locale}" style="margin: 0; padding: 10px 16px; background-color: #fff4d6; '
        f'color: #5c4300; font-family: sans-serif; font-size: 14px;">{text}</p>'
    )


@router.get("/web/{token}", summary="The web version of one email, exactly as its reader got it")
def web_page(request: Request, token: str, services: ServicesDep) -> HTMLResponse:
    try:
        delivery_id = services.tokens.read(Purpose.WEB_VERSION, token)
    except BadToken:
        return invalid_link(request)
    with session_scope(services.sessions) as session:
        found = web_version(session, services.composer, delivery_id)
    if found is None:
        gettext = page_gettext(request)
        title = gettext("This email is not available")
        return page(request, "not_found", status_code=404, title=title)
    html = found.rendered.html
    if found.changed:
        html = html.replace('<div role="article"', changed_note(found.locale) + '<div role="article"', 1)
    # Personal (the reader's links): kept out of search engines as well as caches. The email's own
    # policy: under the pages' default its inline styles were blocked and it showed unstyled.
    return HTMLResponse(html, headers={"X-Robots-Tag": "noindex", "Content-Security-Policy": EMAIL_POLICY})
