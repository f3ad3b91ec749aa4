"""Public archive and tracked links: ``GET /issues``, ``GET /issues/{id}`` (the web version of a sent
campaign, with no personal data) and ``GET /r/{token}`` (a signed click redirect, never open)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from digest.db import session_scope
from digest.issues.archive import archive, web_version
from digest.issues.links import follow
from digest.issues.service import IssueNotFound
from digest.subscribers.tokens import BadToken
from digest.web.deps import IssueId, ServicesDep, invalid_link, page, page_gettext, request_locale

router = APIRouter(tags=["archive"], default_response_class=HTMLResponse)


@router.get("/issues", summary="The archive of sent issues")
def archive_list(request: Request, services: ServicesDep) -> HTMLResponse:
    with session_scope(services.sessions) as session:
        entries = archive(session, services.settings.base_url)
    gettext = page_gettext(request)
    return page(request, "archive", title=gettext("Past issues"), entries=entries)


@router.get("/issues/{issue_id}", summary="The web version of a sent issue (view in browser)")
def archive_issue(request: Request, issue_id: IssueId, services: ServicesDep) -> HTMLResponse:
    with session_scope(services.sessions) as session:
        try:
            rendered = web_version(session, services.renderer, issue_id, request_locale(request))
        except IssueNotFound:
            gettext = page_gettext(request)
            return page(request, "not_found", status_code=404, title=gettext("No such issue"))
    # The email's HTML (the note and links around it in the visitor's language): inline styles and
    # remote images as in a mail client, no script, no framing.
    headers = {"Content-Security-Policy": EMAIL_POLICY, "Vary": "Accept-Language"}
    return HTMLResponse(rendered.html, headers=headers)


EMAIL_POLICY = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src https: data:; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


@router.get("/r/{token}", summary="Follow a tracked link (only to URLs digest signed)", response_model=None)
def click(request: Request, token: str, services: ServicesDep) -> Response:
    try:
        with session_scope(services.sessions) as session:
            url = follow(session, services.links, token, services.clock())
    except BadToken:
        return invalid_link(request)
    return RedirectResponse(url, status_code=302)
