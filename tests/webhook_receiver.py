"""A webhook receiver on loopback, as an operator's system would run one: it checks each request's
Standard Webhooks signature with the ``standardwebhooks`` package (not digest's own code), answers
401 to a bad one, and records every request. An endpoint path can be told to answer 500, or to hold
each request (a slow receiver) until ``release`` is set: ``arrived`` is set when such a request has
come in, ``answered`` once it has been answered."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from standardwebhooks.webhooks import Webhook, WebhookVerificationError


@dataclass(frozen=True)
class Received:
    path: str
    message_id: str
    verified: bool
    status: int
    body: dict[str, Any]

    @property
    def type(self) -> str:
        return str(self.body.get("type"))

    @property
    def subscriber_id(self) -> int | None:
        data = self.body.get("data", {})
        return (data.get("subscriber") or {}).get("id") or data.get("subscriber_id")


HOLD_LIMIT = 60.0  # seconds a held request waits for ``release`` at most


class WebhookReceiver:
    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}  # path -> the endpoint's signing secret
        self.failing: set[str] = set()  # paths that answer 500
        self.held: set[str] = set()  # paths that answer only once ``release`` is set (or after HOLD_LIMIT)
        self.release = threading.Event()
        self.arrived = threading.Event()
        self.answered = threading.Event()
        self.received: list[Received] = []
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def at(self, path: str) -> list[Received]:
        with self._lock:
            return [r for r in self.received if r.path == path]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                secret = receiver.secrets.get(self.path)
                try:
                    if secret is None:
                        raise WebhookVerificationError("unknown endpoint")
                    Webhook(secret).verify(body, headers)
                    verified = True
                except WebhookVerificationError:
                    verified = False
                status = 500 if self.path in receiver.failing else (204 if verified else 401)
                held = self.path in receiver.held
                if held:
                    receiver.arrived.set()
                    receiver.release.wait(HOLD_LIMIT)
                with receiver._lock:
                    receiver.received.append(
                        Received(self.path, headers.get("webhook-id", ""), verified, status, json.loads(body or b"{}"))
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()
                if held:
                    receiver.answered.set()

            def log_message(self, format: str, *args: object) -> None:
                return None

        return Handler

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
