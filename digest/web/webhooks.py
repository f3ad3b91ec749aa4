"""Provider webhooks: ``POST /webhooks/{provider}`` (bounces, complaints, unsubscribes) and
``POST /webhooks/{provider}/inbound`` (mail to the ``List-Unsubscribe`` mailto address).

A request whose credentials (Postmark basic auth) or signature (SendGrid ECDSA) do not verify gets
401 and changes nothing. Events are de-duplicated by the provider's event id.
"""

from __future__ import annotations

import logging
from enum import StrEnum

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from digest.db import session_scope
from digest.events.service import record_events, unsubscribe_by_mail
from digest.events.webhooks import postmark, sendgrid
from digest.events.webhooks.event import DeliveryEvent, InvalidPayload
from digest.web.deps import get_services
from digest.wiring import Services

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


class Provider(StrEnum):
    POSTMARK = "postmark"
    SENDGRID = "sendgrid"


def _unauthorized(provider: Provider, services: Services) -> HTTPException:
    settings = services.settings
    configured = (
        settings.postmark_webhook_user and settings.postmark_webhook_password
        if provider == Provider.POSTMARK
        else settings.sendgrid_webhook_public_key
    )
    if not configured:
        log.warning("%s webhook refused: its DIGEST_%s_WEBHOOK_* settings are not set", provider, provider.upper())
    headers = {"WWW-Authenticate": 'Basic realm="digest webhooks"'} if provider == Provider.POSTMARK else None
    return HTTPException(401, "credentials or signature did not verify", headers=headers)


def _check_postmark(request: Request, services: Services) -> None:
    settings = services.settings
    if not postmark.verify(
        request.headers.get("authorization"), settings.postmark_webhook_user, settings.postmark_webhook_password
    ):
        raise _unauthorized(Provider.POSTMARK, services)


@router.post("/{provider}", summary="Delivery events from the email provider (signature or credentials checked)")
async def provider_events(provider: Provider, request: Request) -> dict[str, int]:
    services = get_services(request)
    if provider == Provider.POSTMARK:
        _check_postmark(request, services)  # the credentials are in a header: checked before the body is read
    elif not sendgrid.signed_recently(request.headers.get(sendgrid.TIMESTAMP_HEADER), services.clock()):
        raise _unauthorized(provider, services)
    body = await request.body()
    if provider == Provider.SENDGRID and not sendgrid.verify(
        services.settings.sendgrid_webhook_public_key,
        body,
        request.headers.get(sendgrid.SIGNATURE_HEADER),
        request.headers.get(sendgrid.TIMESTAMP_HEADER),
    ):
        raise _unauthorized(provider, services)
    try:
        events = postmark.parse(body) if provider == Provider.POSTMARK else sendgrid.parse(body)
    except InvalidPayload as exc:
        raise HTTPException(400, f"{provider} payload: {exc}") from None
    report = await run_in_threadpool(_record, services, events)
    return {"processed": report[0], "duplicates": report[1]}


def _record(services: Services, events: list[DeliveryEvent]) -> tuple[int, int]:
    with session_scope(services.sessions) as session:
        report = record_events(session, events, services.clock())
    return report.processed, report.duplicates


@router.post(
    "/{provider}/inbound", summary="Inbound mail to the List-Unsubscribe mailto address, forwarded by the provider"
)
async def inbound_mail(provider: Provider, request: Request) -> dict[str, int]:
    """Postmark posts JSON (with its basic-auth credentials); SendGrid Inbound Parse posts a form.
    The HMAC token in ``unsubscribe+<token>@<domain>`` authenticates the unsubscribe itself."""
    services = get_services(request)
    try:
        if provider == Provider.POSTMARK:
            _check_postmark(request, services)
            recipients = postmark.inbound_recipients(await request.body())
        else:
            form = await request.form()
            recipients = sendgrid.inbound_recipients({k: v for k, v in form.items() if isinstance(v, str)})
    except InvalidPayload as exc:
        raise HTTPException(400, f"{provider} inbound payload: {exc}") from None

    def run() -> int:
        with session_scope(services.sessions) as session:
            return unsubscribe_by_mail(
                session, services.tokens, recipients, services.settings.from_domain, services.clock()
            )

    return {"unsubscribed": await run_in_threadpool(run)}
