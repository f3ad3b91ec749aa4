"""A real SMTP server on loopback (aiosmtpd) that keeps what it receives: for the demo and the tests."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Received:
    mail_from: str
    rcpt_tos: tuple[str, ...]
    raw: bytes

    @property
    def message(self) -> EmailMessage:
        return message_from_bytes(self.raw, policy=policy.default)


class _Handler:
    def __init__(self, sink: SMTPSink):
        self.sink = sink

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        self.sink._store(Received(str(envelope.mail_from), tuple(envelope.rcpt_tos), raw))
        return "250 2.0.0 Message accepted for delivery"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SMTPSink:
    """``with SMTPSink() as sink: ... sink.messages``; ``sink.url`` goes into DIGEST_SMTP_URL."""

    def __init__(self, host: str = "127.0.0.1", port: int | None = None, handler: Any | None = None):
        self.host = host
        self.port = port or free_port()
        self._lock = threading.Lock()
        self.received: list[Received] = []
        self.controller = Controller(handler or _Handler(self), hostname=host, port=self.port, decode_data=False)

    @property
    def url(self) -> str:
        return f"smtp://{self.host}:{self.port}"

    def _store(self, item: Received) -> None:
        with self._lock:
            self.received.append(item)

    @property
    def messages(self) -> list[EmailMessage]:
        with self._lock:
            return [r.message for r in self.received]

    def clear(self) -> None:
        with self._lock:
            self.received.clear()

    def start(self) -> SMTPSink:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def __enter__(self) -> SMTPSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
