"""Postmark: the batch API transport, and its webhooks (basic-auth credentials)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

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


def _check(headers: Mapping[str, str], settings: Settings, now: datetime | None = None) -> None:
    user, password = settings.postmark_webhook_user, settings.postmark_webhook_password
    if not postmark.verify(headers.get("authorization"), user, password):
        configured = bool(user and password)
        raise NotVerified(
            "credentials did not verify" if configured else "DIGEST_POSTMARK_WEBHOOK_USER/_PASSWORD are not set",
            challenge='Basic realm="digest webhooks"',
        )


def _events(call: WebhookCall) -> list[DeliveryEvent]:
    _check(call.headers, call.settings)
    return postmark.parse(call.body)


def _inbound(call: WebhookCall) -> list[str]:
    _check(call.headers, call.settings)
    return postmark.inbound_recipients(call.body)


PROVIDER = Provider("postmark", _transport, precheck=_check, events=_events, inbound=_inbound)
