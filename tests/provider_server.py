"""A local HTTP server that speaks Postmark's and SendGrid's sending APIs as their docs describe them.

Postmark, ``POST /email/batch``: header ``X-Postmark-Server-Token``; a JSON array of at most 500
messages (From, To, Subject, TextBody and/or HtmlBody, Headers [{Name, Value}], MessageStream);
200 with one ``{ErrorCode, Message, MessageID, SubmittedAt, To}`` per message, in order (ErrorCode 0
= accepted, 406 = inactive recipient, 300 = invalid request); 401 for a bad token, 422 with
``{ErrorCode, Message}`` for a malformed call.

SendGrid, ``POST /v3/mail/send``: header ``Authorization: Bearer KEY``; JSON with personalizations
[{to: [{email, name?}]}], from, subject, content [{type, value}], headers; 202 with an empty body and
``X-Message-Id``; 400 with ``{"errors": [{"message", "field", "help"}]}``; 401 for a bad key.

Tests script failures: ``inactive`` / ``invalid`` addresses get per-message errors; ``fail_next``
queues whole-request answers (status, body, headers) served before normal processing.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from digest.delivery.sink import free_port


@dataclass(frozen=True)
class Accepted:
    """A message the fake provider accepted, as a receiving mailbox would see it."""

    to: str
    subject: str
    headers: dict[str, str]
    text: str
    html: str
    provider_id: str


@dataclass
class ProviderServer:
    token: str = "test-token"
    inactive: set[str] = field(default_factory=set)  # Postmark 406 / SendGrid: refused as bad address
    fail_next: deque[tuple[int, Any, dict[str, str]]] = field(default_factory=deque)
    requests: list[tuple[str, dict[str, str], Any]] = field(default_factory=list)  # path, headers, body
    accepted: list[Accepted] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> ProviderServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    # -- Postmark ------------------------------------------------------------------------------
    def postmark_batch(self, headers: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if headers.get("x-postmark-server-token") != self.token:
            return (
                401,
                {"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied in the HTTP headers."},
                {},
            )
        if not isinstance(body, list) or not body or len(body) > 500:
            return 422, {"ErrorCode": 300, "Message": "Batch must be a JSON array of 1 to 500 messages."}, {}
        answers = []
        for message in body:
            to = str(message.get("To", ""))
            address = to.rsplit("<", 1)[-1].rstrip(">").strip().lower()
            missing = [f for f in ("From", "To", "Subject") if not message.get(f)]
            if missing or not (message.get("TextBody") or message.get("HtmlBody")):
                answers.append(
                    {"ErrorCode": 300, "Message": f"Invalid email request: missing {missing or 'body'}", "To": to}
                )
            elif address in self.inactive:
                answers.append(
                    {
                        "ErrorCode": 406,
                        "Message": "You tried to send to recipient(s) that have been marked as inactive.",
                        "To": to,
                    }
                )
            else:
                pid = str(uuid.uuid4())
                extra = {h["Name"]: h["Value"] for h in message.get("Headers", [])}
                self._accept(
                    Accepted(
                        address,
                        message["Subject"],
                        extra,
                        message.get("TextBody", ""),
                        message.get("HtmlBody", ""),
                        pid,
                    )
                )
                answers.append(
                    {
                        "ErrorCode": 0,
                        "Message": "OK",
                        "MessageID": pid,
                        "SubmittedAt": datetime.now(UTC).isoformat(),
                        "To": to,
                    }
                )
        return 200, answers, {}

    # -- SendGrid ------------------------------------------------------------------------------
    def sendgrid_send(self, headers: dict[str, str], body: Any) -> tuple[int, Any, dict[str, str]]:
        if headers.get("authorization") != f"Bearer {self.token}":
            return (
                401,
                {
                    "errors": [
                        {
                            "message": "The provided authorization grant is invalid, expired, or revoked",
                            "field": None,
                            "help": None,
                        }
                    ]
                },
                {},
            )
        errors = []
        personalizations = body.get("personalizations") or []
        if len(personalizations) != 1 or not personalizations[0].get("to"):
            errors.append(
                {"message": "You must have at least one personalization.", "field": "personalizations", "help": None}
            )
        for f in ("from", "subject", "content"):
            if not body.get(f):
                errors.append({"message": f"The {f} parameter is required.", "field": f, "help": None})
        if errors:
            return 400, {"errors": errors}, {}
        address = personalizations[0]["to"][0]["email"].lower()
        if address in self.inactive:
            return (
                400,
                {
                    "errors": [
                        {
                            "message": "Does not contain a valid address.",
                            "field": "personalizations.0.to.0.email",
                            "help": None,
                        }
                    ]
                },
                {},
            )
        content = {c["type"]: c["value"] for c in body["content"]}
        pid = uuid.uuid4().hex[:22]
        self._accept(
            Accepted(
                address,
                body["subject"],
                dict(body.get("headers", {})),
                content.get("text/plain", ""),
                content.get("text/html", ""),
                pid,
            )
        )
        return 202, None, {"X-Message-Id": pid}

    def _accept(self, item: Accepted) -> None:
        with self._lock:
            self.accepted.append(item)


def _handler(provider: ProviderServer) -> type[BaseHTTPRequestHandler]:
    routes = {"/email/batch": provider.postmark_batch, "/v3/mail/send": provider.sendgrid_send}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as the real APIs

        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", 0))
            raw = self.rfile.read(length)
            headers = {k.lower(): v for k, v in self.headers.items()}
            try:
                body = json.loads(raw)
            except ValueError:
                return self._reply(400, {"errors": [{"message": "Bad Request", "field": None}]}, {})
            with provider._lock:
                provider.requests.append((self.path, headers, body))
                scripted = provider.fail_next.popleft() if provider.fail_next else None
            if scripted is not None:
                return self._reply(*scripted)
            if self.path not in routes:
                return self._reply(404, {"Message": "not found"}, {})
            if "application/json" not in headers.get("content-type", ""):
                return self._reply(415, {"Message": "Content-Type must be application/json"}, {})
            self._reply(*routes[self.path](headers, body))

        def _reply(self, status: int, body: Any, headers: dict[str, str]) -> None:
            data = b"" if body is None else json.dumps(body).encode()
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            return None

    return Handler
