"""Postmark transport: ``POST {api_url}/email/batch``, up to 500 messages per call.

Postmark takes JSON fields, not raw MIME, so each message is mapped onto From/To/Subject/TextBody/
HtmlBody and its headers (Message-ID, List-Id, List-Unsubscribe, List-Unsubscribe-Post) go in
``Headers``. The batch answers 200 with one result per message, in request order, each with an
``ErrorCode`` (0 = accepted, with Postmark's ``MessageID``); a whole-request problem answers 401, 422,
429 or 5xx. The messages go to the broadcast message stream; link and open tracking stay off so
that the unsubscribe links reach readers as rendered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from email.utils import formataddr
from typing import Any

from digest.config import Settings
from digest.delivery.http import api_session, post_json, probe_get, raise_for_request
from digest.delivery.transport import ConnectionFailure, Failure, SendResult, TransientError, Transport
from digest.events.webhooks import postmark
from digest.events.webhooks.event import DeliveryEvent
from digest.providers import NotVerified, Provider, ProviderConfigError, WebhookCall
from digest.rendering.message import OutgoingMessage

POSTMARK_API_URL = "https://api.postmarkapp.com"
MAX_BATCH = 500
MAX_BATCH_BYTES = 45 * 1024 * 1024  # Postmark accepts 50 MB per batch call
MESSAGE_STREAM = "broadcast"

INACTIVE_RECIPIENT = 406  # hard bounced, complained or unsubscribed at Postmark: suppress here too
# Account-level states an operator can fix: not allowed to send (out of credits, suspended), account
# pending approval, sender signature not confirmed. No message is to blame.
ACCOUNT_CODES = frozenset({400, 405, 412})
RATE_LIMITED = 429


class PostmarkTransport:
    name = "postmark"
    wants_raw = False  # the API takes fields; raw MIME would be ignored
    batch_size = MAX_BATCH

    def __init__(
        self, token: str, *, api_url: str = POSTMARK_API_URL, stream: str = MESSAGE_STREAM, backoff: float = 0.5
    ):
        self.url = api_url.rstrip("/") + "/email/batch"
        self.probe_url = api_url.rstrip("/") + "/server"
        self.stream = stream
        self.session = api_session({"X-Postmark-Server-Token": token}, backoff=backoff)

    def payload(self, msg: OutgoingMessage) -> dict[str, Any]:
        return {
            "From": msg.from_header,
            "To": formataddr((msg.to_name, msg.to_email)),
            "Subject": msg.subject,
            "TextBody": msg.text,
            "HtmlBody": msg.html,
            "Headers": [{"Name": "Message-ID", "Value": msg.message_id}]
            + [{"Name": name, "Value": value} for name, value in msg.headers],
            "MessageStream": self.stream,
            "TrackOpens": False,
            "TrackLinks": "None",
            "Metadata": {"delivery_id": str(msg.delivery_id)},
        }

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        results: list[SendResult] = []
        for batch, payloads in self._requests(messages):
            results.extend(self._send_batch(batch, payloads))
        return results

    def _requests(
        self, messages: Sequence[OutgoingMessage]
    ) -> Iterator[tuple[list[OutgoingMessage], list[dict[str, Any]]]]:
        """Split into calls of at most 500 messages and 45 MB of JSON."""
        batch: list[OutgoingMessage] = []
        payloads: list[dict[str, Any]] = []
        size = 0
        for msg in messages:
            payload = self.payload(msg)
            length = len(json.dumps(payload).encode())
            if batch and (len(batch) == MAX_BATCH or size + length > MAX_BATCH_BYTES):
                yield batch, payloads
                batch, payloads, size = [], [], 0
            batch.append(msg)
            payloads.append(payload)
            size += length
        if batch:
            yield batch, payloads

    def _send_batch(self, batch: list[OutgoingMessage], payloads: list[dict[str, Any]]) -> list[SendResult]:
        response = post_json(self.session, self.url, payloads, "Postmark")
        raise_for_request(response, "Postmark")
        if response.status_code == 422:
            # The whole call was refused (malformed request, unverified sender, ...): nothing was sent.
            raise ConnectionFailure(f"Postmark refused the batch: {_error_text(response.json())}")
        if response.status_code != 200:
            raise TransientError(f"Postmark answered HTTP {response.status_code}: {response.text[:300]}")
        answers = response.json()
        if not isinstance(answers, list) or len(answers) != len(batch):
            raise TransientError(
                f"Postmark answered {len(answers) if isinstance(answers, list) else 'no list'} results "
                f"for {len(batch)} messages"
            )
        return [_result(msg, answer) for msg, answer in zip(batch, answers, strict=True)]

    def probe(self) -> None:
        """``GET /server``: answers 200 with the server's settings while the token works."""
        probe_get(self.session, self.probe_url, "Postmark")

    def close(self) -> None:
        self.session.close()


def _error_text(answer: dict[str, Any]) -> str:
    return f"ErrorCode {answer.get('ErrorCode')}: {answer.get('Message', '')}".strip()


def _result(msg: OutgoingMessage, answer: dict[str, Any]) -> SendResult:
    code = int(answer.get("ErrorCode", -1))
    if code == 0:
        return SendResult.ok(msg.delivery_id, provider_id=str(answer["MessageID"]))
    error = f"Postmark {_error_text(answer)}"
    if code in ACCOUNT_CODES:
        return SendResult.failed(msg.delivery_id, error, Failure.CONNECTION)
    if code == RATE_LIMITED:
        return SendResult.failed(msg.delivery_id, error, Failure.THROTTLED)
    return SendResult.failed(
        msg.delivery_id, error, Failure.RECIPIENT if code == INACTIVE_RECIPIENT else Failure.MESSAGE
    )


# ---------------------------------------------------------------------------------------------
# The registration


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
