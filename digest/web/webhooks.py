"""Provider webhooks: ``POST /webhooks/{provider}`` (bounces, complaints, unsubscribes) and
``POST /webhooks/{provider}/inbound`` (mail to the ``List-Unsubscribe`` mailto address).

The provider is looked up in the registry (digest/providers): its handler checks the
caller (credentials or a signature, as docs/providers.md lists them) and parses the body; a
request that does not verify gets 401 and changes nothing. Events are de-duplicated by the
provider's event id.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request
from fastapi.concurrency import run_in_threadpool

from digest import providers
from digest.db import session_scope
from digest.events.delivery_event import DeliveryEvent, InvalidPayload
from digest.events.service import SoftBounceLimit, record_events, unsubscribe_by_mail
from digest.providers import NotVerified, Provider, WebhookCall
from digest.web.deps import get_services
from digest.wiring import Services

log = logging.getLogger(__name__)

router = APIRouter(prefix="/webhooks", tags=["webhooks"])


def _provider(name: str) -> Provider:
    provider = providers.get(name)
    if provider is None or provider.events is None:
        raise HTTPException(404, f"no webhooks for {name!r}")
    return provider


async def _call(request: Request, services: Services, checked_by: Provider | None = None) -> WebhookCall:
    """The request for a provider's handler. ``checked_by``'s header checks (credentials, a signature's
    age) run first, before the body is read; the size limit (digest/web/limits.py) bounds the rest."""
    headers = {k.lower(): v for k, v in request.headers.items()}
    if checked_by is not None and checked_by.precheck is not None:
        checked_by.precheck(headers, services.settings, services.clock())
    form: dict[str, str] = {}
    if request.headers.get("content-type", "").startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
        form = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
        body = b""
    else:
        body = await request.body()
    return WebhookCall(body, headers, form, services.settings, services.fetch_url)


def _refused(provider: Provider, exc: NotVerified) -> HTTPException:
    log.warning("%s webhook refused: %s", provider.name, exc)
    headers = {"WWW-Authenticate": exc.challenge} if exc.challenge else None
    return HTTPException(401, "credentials or signature did not verify", headers=headers)


@router.post("/{name}", summary="Delivery events from the email provider (signature or credentials checked)")
async def provider_events(name: str, request: Request) -> dict[str, int]:
    provider = _provider(name)
    assert provider.events is not None
    services = get_services(request)
    try:
        call = await _call(request, services, provider)
        # In a thread: verifying a signature may fetch the signing certificate.
        events = await run_in_threadpool(provider.events, call)
    except NotVerified as exc:
        raise _refused(provider, exc) from None
    except InvalidPayload as exc:
        raise HTTPException(400, f"{name} payload: {exc}") from None
    report = await run_in_threadpool(_record, services, events)
    return {"processed": report[0], "duplicates": report[1]}


def _record(services: Services, events: list[DeliveryEvent]) -> tuple[int, int]:
    with session_scope(services.sessions) as session:
        soft = SoftBounceLimit(services.settings.soft_bounce_limit, services.settings.soft_bounce_days)
        report = record_events(session, events, services.clock(), soft)
    return report.processed, report.duplicates


@router.post(
    "/{name}/inbound", summary="Inbound mail to the List-Unsubscribe mailto address, forwarded by the provider"
)
async def inbound_mail(name: str, request: Request) -> dict[str, int]:
    """The provider posts JSON or a form, as its ``inbound`` handler reads it (after checking the
    caller's credentials where it has any). The HMAC token in ``unsubscribe+<token>@<domain>``
    authenticates the unsubscribe itself."""
    provider = providers.get(name)
    if provider is None or provider.inbound is None:
        raise HTTPException(404, f"no inbound mail for {name!r}")
    services = get_services(request)
    try:
        call = await _call(request, services)
        recipients = provider.inbound(call)
    except NotVerified as exc:
        raise _refused(provider, exc) from None
    except InvalidPayload as exc:
        raise HTTPException(400, f"{name} inbound payload: {exc}") from None

    def run() -> int:
        with session_scope(services.sessions) as session:
            return unsubscribe_by_mail(
                session, services.tokens, recipients, services.settings.from_domain, services.clock()
            )

    return {"unsubscribed": await run_in_threadpool(run)}
