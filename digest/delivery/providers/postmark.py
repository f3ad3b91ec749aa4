"""Postmark: the batch API transport, and its webhooks (basic-auth credentials)."""

from __future__ import annotations

from digest.config import Settings
from digest.delivery.postmark import POSTMARK_API_URL, PostmarkTransport
from digest.delivery.providers import NotVerified, Provider, ProviderConfigError, WebhookCall
from digest.delivery.transport import Transport
from digest.events.webhooks import postmark
from digest.events.webhooks.event import DeliveryEvent


def _transport(settings: Settings) -> Transport:
    if not settings.api_token:
        raise ProviderConfigError("DIGEST_TRANSPORT=postmark needs DIGEST_API_TOKEN (the server token)")
    return PostmarkTransport(settings.api_token, api_url=settings.api_url or POSTMARK_API_URL)


def _check(call: WebhookCall) -> None:
    user, password = call.settings.postmark_webhook_user, call.settings.postmark_webhook_password
    if not postmark.verify(call.headers.get("authorization"), user, password):
        configured = bool(user and password)
        raise NotVerified(
            "credentials did not verify" if configured else "DIGEST_POSTMARK_WEBHOOK_USER/_PASSWORD are not set",
            challenge='Basic realm="digest webhooks"',
        )


def _events(call: WebhookCall) -> list[DeliveryEvent]:
    _check(call)
    return postmark.parse(call.body)


def _inbound(call: WebhookCall) -> list[str]:
    _check(call)
    return postmark.inbound_recipients(call.body)


PROVIDER = Provider("postmark", _transport, events=_events, inbound=_inbound)
