"""A reader's data rights from their preference centre: download everything held about them as
JSON, and erase it (a page that asks for confirmation, then a POST). The preferences link is the
credential, as for the preference centre itself; both work whatever the subscription's status."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from digest.db import session_scope
from digest.i18n import translations
from digest.rights import erase_subscriber, export_subscriber
from digest.subscribers.models import Subscriber
from digest.subscribers.tokens import BadToken, Purpose
from digest.web.deps import ServicesDep, invalid_link, page, request_locale

router = APIRouter(tags=["subscribers"], default_response_class=HTMLResponse)


def _subscriber_id(request: Request, services: ServicesDep, token: str) -> int | HTMLResponse:
    try:
        return services.tokens.read(Purpose.PREFERENCES, token)
    except BadToken:
        return invalid_link(request)


@router.get(
    "/preferences/{token}/export",
    summary="Download everything held about you (JSON)",
    response_class=Response,
    responses={200: {"content": {"application/json": {}}, "description": "the reader's data"}},
)
def export_download(request: Request, token: str, services: ServicesDep) -> Response:
    subscriber_id = _subscriber_id(request, services, token)
    if isinstance(subscriber_id, HTMLResponse):
        return subscriber_id
    with session_scope(services.sessions) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is None or row.erased_at is not None:
            return invalid_link(request, 404)
        data = export_subscriber(session, row, services.clock())
    return Response(
        json.dumps(data, indent=2, ensure_ascii=False),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="my-digest-data.json"'},
    )


@router.get("/preferences/{token}/erase", summary="Erase your data: asks for confirmation, changes nothing")
def erase_page(request: Request, token: str, services: ServicesDep) -> HTMLResponse:
    subscriber_id = _subscriber_id(request, services, token)
    if isinstance(subscriber_id, HTMLResponse):
        return subscriber_id
    with session_scope(services.sessions) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is None or row.erased_at is not None:
            return _erased(request)
        email, locale = row.email, row.locale
    return page(
        request,
        "erase",
        locale=locale,
        title=translations(locale).gettext("Erase your data"),
        email=email,
        export_url=f"/preferences/{token}/export",
    )


def _erased(request: Request) -> HTMLResponse:
    """Nothing is left to tell the reader's language by: the page is in the visitor's."""
    locale = request_locale(request)
    return page(request, "erased", locale=locale, title=translations(locale).gettext("Your data is erased"))


@router.post("/preferences/{token}/erase", summary="Erase your data (the form must say confirm=yes)")
def erase_now(
    request: Request, token: str, services: ServicesDep, confirm: Annotated[str, Form()] = ""
) -> HTMLResponse:
    subscriber_id = _subscriber_id(request, services, token)
    if isinstance(subscriber_id, HTMLResponse):
        return subscriber_id
    with session_scope(services.sessions) as session:
        row = session.get(Subscriber, subscriber_id)
        if row is None or row.erased_at is not None:
            return _erased(request)
        if confirm != "yes":
            return page(
                request,
                "erase",
                status_code=400,
                locale=row.locale,
                title=translations(row.locale).gettext("Erase your data"),
                email=row.email,
                export_url=f"/preferences/{token}/export",
                error=True,
            )
        locale = row.locale
        erase_subscriber(session, row, services.clock(), source="the reader")
    return page(request, "erased", locale=locale, title=translations(locale).gettext("Your data is erased"))
