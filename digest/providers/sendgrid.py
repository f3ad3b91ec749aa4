"""SendGrid transport: ``POST {api_url}/v3/mail/send``, one message per request.

The v3 API takes JSON, not raw MIME: one personalization (the recipient, and the delivery id as a
custom arg so webhook events find their row), the subject, a text/plain and a text/html content
part, and the digest headers (Message-ID, List-Id, List-Unsubscribe, List-Unsubscribe-Post) in
``headers``. SendGrid answers ``202 Accepted`` with an empty body and the ``X-Message-Id`` header;
a refused message answers 400 with ``{"errors": [{"message", "field", "help"}]}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from email.utils import parseaddr
from typing import Any

from digest.config import Settings
from digest.delivery.http import api_session, post_json, probe_get, raise_for_request
from digest.delivery.transport import Failure, SendResult, TransientError, Transport
from digest.events.webhooks import sendgrid
from digest.events.webhooks.event import DeliveryEvent
from digest.providers import NotVerified, Provider, ProviderConfigError, WebhookCall
from digest.rendering.message import OutgoingMessage

SENDGRID_API_URL = "https://api.sendgrid.com"


class SendGridTransport:
    name = "sendgrid"
    wants_raw = False  # the API takes fields; raw MIME would be ignored
    batch_size = 1

    def __init__(self, token: str, *, api_url: str = SENDGRID_API_URL, backoff: float = 0.5):
        self.url = api_url.rstrip("/") + "/v3/mail/send"
        self.probe_url = api_url.rstrip("/") + "/v3/scopes"
        self.session = api_session({"Authorization": f"Bearer {token}"}, backoff=backoff)

    def payload(self, msg: OutgoingMessage) -> dict[str, Any]:
        from_name, from_email = parseaddr(msg.from_header)
        return {
            "personalizations": [
                {"to": [_address(msg.to_email, msg.to_name)], "custom_args": {"delivery_id": str(msg.delivery_id)}}
            ],
            "from": _address(from_email, from_name),
            "subject": msg.subject,
            "content": [{"type": "text/plain", "value": msg.text}, {"type": "text/html", "value": msg.html}],
            "headers": {"Message-ID": msg.message_id, **dict(msg.headers)},
            "tracking_settings": {"click_tracking": {"enable": False}, "open_tracking": {"enable": False}},
        }

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        return [self._send_one(msg) for msg in messages]

    def _send_one(self, msg: OutgoingMessage) -> SendResult:
        response = post_json(self.session, self.url, self.payload(msg), "SendGrid")
        raise_for_request(response, "SendGrid")
        if response.status_code in (200, 202):
            return SendResult.ok(msg.delivery_id, provider_id=response.headers.get("X-Message-Id") or msg.message_id)
        if response.status_code in (400, 413):
            errors = _errors(response)
            bad_address = any(str(e.get("field") or "").startswith("personalizations.0.to") for e in errors)
            detail = "; ".join(f"{e.get('field') or 'request'}: {e.get('message', '')}" for e in errors)
            error = f"SendGrid refused the message (HTTP {response.status_code}): {detail or response.text[:300]}"
            return SendResult.failed(msg.delivery_id, error, Failure.RECIPIENT if bad_address else Failure.MESSAGE)
        raise TransientError(f"SendGrid answered HTTP {response.status_code}: {response.text[:300]}")

    def probe(self) -> None:
        """``GET /v3/scopes``: answers 200 with the key's scopes while the key works."""
        probe_get(self.session, self.probe_url, "SendGrid")

    def close(self) -> None:
        self.session.close()


def _address(email: str, name: str) -> dict[str, str]:
    return {"email": email, "name": name} if name else {"email": email}


def _errors(response: Any) -> list[dict[str, Any]]:
    try:
        errors = response.json().get("errors", [])
    except ValueError:
        return []
    return [e for e in errors if isinstance(e, dict)]


# ---------------------------------------------------------------------------------------------
# The registration


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
