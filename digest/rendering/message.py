"""The fully rendered message handed to a transport: everything is decided before it gets here."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class OutgoingMessage:
    delivery_id: int
    message_id: str  # "<...@domain>", stable for one issue and one subscriber
    from_header: str
    to_email: str
    to_name: str
    subject: str
    text: str
    html: str
    headers: tuple[tuple[str, str], ...] = field(default=())  # List-Id, List-Unsubscribe, ...
    # The RFC 5322 bytes as they go on the wire, CRLF line ends, signed if DKIM is configured; written
    # by ``headers.mime_bytes`` for transports that send raw MIME (SMTP, outbox), empty for the others.
    raw: bytes = b""

    @property
    def envelope_from(self) -> str:
        return self.from_header.rsplit("<", 1)[-1].rstrip(">").strip()
