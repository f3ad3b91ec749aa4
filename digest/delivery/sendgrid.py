"""SendGrid transport: ``POST {api_url}/v3/mail/send``, one message per request.

The v3 API takes JSON, not raw MIME: one personalization (the recipient, and the delivery id as a
custom arg so webhook events find their row), the subject, a text/plain and a text/html content
part, and the digest headers (Message-ID, List-Id, List-Unsubscribe, List-Unsubscribe-Post) in
``headers``. SendGrid answers ``202 Accepted`` with an empty body and the ``X-Message-Id`` header;
a refused message answers 400 with ``{"errors": [{"message", "field", "help"}]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from email.utils import parseaddr
from typing import Any

from digest.delivery.http import api_session, post_json, raise_for_request
from digest.delivery.transport import SendResult, TransientError
from digest.rendering.message import OutgoingMessage

SENDGRID_API_URL = "https://api.sendgrid.com"


class SendGridTransport:
    name = "sendgrid"
    wants_raw = False  # the API takes fields; raw MIME would be ignored
    batch_size = 1

    def __init__(self, token: str, *, api_url: str = SENDGRID_API_URL, backoff: float = 0.5):
        self.url = api_url.rstrip("/") + "/v3/mail/send"
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
            return SendResult.failed(msg.delivery_id, error, permanent=True, bounce=bad_address)
        raise TransientError(f"SendGrid answered HTTP {response.status_code}: {response.text[:300]}")

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
