"""SendGrid: the v3 mail send transport, and its event webhook (ECDSA-signed) and Inbound Parse."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from digest.config import Settings
from digest.delivery.providers import NotVerified, Provider, ProviderConfigError, WebhookCall
from digest.delivery.sendgrid import SENDGRID_API_URL, SendGridTransport
from digest.delivery.transport import Transport
from digest.events.webhooks import sendgrid
from digest.events.webhooks.event import DeliveryEvent


def _transport(settings: Settings) -> Transport:
    if not settings.api_token:
        raise ProviderConfigError("DIGEST_TRANSPORT=sendgrid needs DIGEST_API_TOKEN (the API key)")
    return SendGridTransport(settings.api_token, api_url=settings.api_url or SENDGRID_API_URL)


def _signed_recently(headers: Mapping[str, str], settings: Settings, now: datetime) -> None:
    if not sendgrid.signed_recently(headers.get(sendgrid.TIMESTAMP_HEADER.lower()), now):
        raise NotVerified("the signature's timestamp is missing or too old")


def _events(call: WebhookCall) -> list[DeliveryEvent]:
    key = call.settings.sendgrid_webhook_public_key
    signature = call.headers.get(sendgrid.SIGNATURE_HEADER.lower())
    timestamp = call.headers.get(sendgrid.TIMESTAMP_HEADER.lower())
    if not sendgrid.verify(key, call.body, signature, timestamp):
        raise NotVerified("signature did not verify" if key else "DIGEST_SENDGRID_WEBHOOK_PUBLIC_KEY is not set")
    return sendgrid.parse(call.body)


def _inbound(call: WebhookCall) -> list[str]:
    return sendgrid.inbound_recipients(dict(call.form))


PROVIDER = Provider("sendgrid", _transport, precheck=_signed_recently, events=_events, inbound=_inbound)
