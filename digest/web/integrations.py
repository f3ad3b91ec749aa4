"""The dashboard's integrations page (/editor/integrations): API keys (create, shown once; revoke)
and webhook endpoints (add, shown with their signing secret once; remove), with the latest webhook
deliveries and their state, failed ones first, each failed one with a button to try it again.

Same guard as every /editor page: a signed-in editor, and the session's CSRF token on each POST.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy import case, func, select, update
from sqlalchemy.orm import Session

from digest.db import session_scope
from digest.i18n import N_
from digest.integrations.apikeys import SCOPES, UnknownScope, create_key, list_keys, revoke_key
from digest.integrations.models import WebhookDelivery, WebhookEndpoint, WebhookStatus
from digest.integrations.webhooks import EVENTS, new_secret
from digest.web.deps import IssueId, ServicesDep, explain, page_gettext, request_locale
from digest.web.editor import EditorDep, current_editor, editor_page, local

router = APIRouter(
    prefix="/editor/integrations",
    tags=["editor"],
    default_response_class=HTMLResponse,
    include_in_schema=False,
    dependencies=[Depends(current_editor)],
)
FormText = Annotated[str, Form()]
FormList = Annotated[list[str], Form()]
RECENT = 100
HERE = "/editor/integrations"


def _context(db: Session, timezone: str, locale: str) -> dict[str, Any]:
    keys = [
        {
            "id": k.id,
            "prefix": k.prefix,
            "name": k.name,
            "scopes": k.scopes,
            "created": local(k.created_at, timezone, locale),
            "last_used": local(k.last_used_at, timezone, locale),
            "revoked": local(k.revoked_at, timezone, locale),
        }
        for k in list_keys(db)
    ]
    counts = {
        (e, s): n
        for e, s, n in db.execute(
            select(WebhookDelivery.endpoint_id, WebhookDelivery.status, func.count()).group_by(
                WebhookDelivery.endpoint_id, WebhookDelivery.status
            )
        )
    }
    endpoints = [
        {
            "id": e.id,
            "url": e.url,
            "events": e.events,
            "description": e.description,
            **{s.value: counts.get((e.id, s.value), 0) for s in WebhookStatus},
        }
        for e in db.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))
    ]
    failed_first = case((WebhookDelivery.status == WebhookStatus.FAILED, 0), else_=1)
    rows = db.execute(
        select(WebhookDelivery, WebhookEndpoint.url)
        .join(WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id)
        .order_by(failed_first, WebhookDelivery.id.desc())
        .limit(RECENT)
    ).all()
    deliveries = [
        {
            "id": d.id,
            "event": d.event,
            "url": url,
            "status": d.status,
            "attempts": d.attempts,
            "last": d.last_error or (str(d.last_status_code) if d.last_status_code else ""),
            "created": local(d.created_at, timezone, locale),
        }
        for d, url in rows
    ]
    return {"keys": keys, "endpoints": endpoints, "deliveries": deliveries, "scopes": SCOPES, "events": EVENTS}


def _page(request: Request, services: ServicesDep, editor: EditorDep, status: int = 200, **extra: Any) -> HTMLResponse:
    with session_scope(services.sessions) as db:
        context = _context(db, editor.timezone, request_locale(request))
    _ = page_gettext(request)
    title = _("Integrations")
    return editor_page(request, "integrations", editor, status_code=status, title=title, **context, **extra)


@router.get("")
def integrations(request: Request, editor: EditorDep, services: ServicesDep) -> HTMLResponse:
    return _page(request, services, editor)


@router.post("/keys")
def add_key(
    request: Request,
    editor: EditorDep,
    services: ServicesDep,
    name: FormText = "",
    scopes: FormList = [],  # noqa: B006 (FastAPI copies defaults)
) -> HTMLResponse:
    try:
        with session_scope(services.sessions) as db:
            row, key = create_key(db, scopes, name or f"made by {editor.email}", services.clock())
            prefix = row.prefix
    except UnknownScope as exc:
        return _page(request, services, editor, status=400, key_error=explain(request, exc))
    return _page(request, services, editor, new_key=key, new_key_prefix=prefix)


@router.post("/keys/{key_id}/revoke", response_model=None)
def revoke(key_id: IssueId, services: ServicesDep) -> RedirectResponse:
    with session_scope(services.sessions) as db:
        revoke_key(db, str(key_id), services.clock())
    return RedirectResponse(HERE, status_code=303)


@router.post("/webhooks")
def add_endpoint(
    request: Request,
    editor: EditorDep,
    services: ServicesDep,
    url: FormText = "",
    events: FormList = [],  # noqa: B006
    description: FormText = "",
) -> HTMLResponse:
    url = url.strip()
    chosen = sorted(set(events) & set(EVENTS))
    if not url.startswith(("http://", "https://")) or len(url) > 2000 or not chosen or "\x00" in url:
        error = page_gettext(request)(N_("Give an http(s) URL and at least one event."))
        return _page(request, services, editor, status=400, webhook_error=error)
    with session_scope(services.sessions) as db:
        row = WebhookEndpoint(
            url=url, secret=new_secret(), events=" ".join(chosen), description=description.replace("\x00", "")[:200]
        )
        db.add(row)
        db.flush()
        secret = row.secret
    return _page(request, services, editor, new_secret=secret, new_secret_url=url)


@router.post("/webhooks/{endpoint_id}/remove", response_model=None)
def remove_endpoint(endpoint_id: IssueId, services: ServicesDep) -> RedirectResponse:
    with session_scope(services.sessions) as db:
        row = db.get(WebhookEndpoint, endpoint_id)
        if row is not None:
            db.delete(row)
    return RedirectResponse(HERE, status_code=303)


@router.post("/deliveries/{delivery_id}/retry", response_model=None)
def retry_delivery(delivery_id: IssueId, services: ServicesDep) -> RedirectResponse:
    """Give a failed delivery a fresh set of attempts (after the receiver is fixed)."""
    with session_scope(services.sessions) as db:
        done = (
            db.connection()
            .execute(
                update(WebhookDelivery)
                .where(WebhookDelivery.id == delivery_id, WebhookDelivery.status == WebhookStatus.FAILED)
                .values(status=WebhookStatus.PENDING, attempts=0, next_attempt_at=services.clock())
                .execution_options(synchronize_session=False)
            )
            .rowcount
        )
    if done:
        services.queue.deliver_webhooks()
    return RedirectResponse(HERE, status_code=303)
