"""The transport seam: a few methods that move fully rendered messages, nothing else.

Headers, rate limits, retries and suppression live above this line; a transport only reports, per
message, whether it was accepted (with the provider's id) or failed permanently or transiently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from digest.rendering.message import OutgoingMessage


class TransportError(Exception):
    """A failure that concerns a whole batch (connection refused, authentication failed, ...)."""


class TransientError(TransportError):
    """Worth retrying later: 4xx replies, dropped connections, timeouts."""


class PermanentError(TransportError):
    """Retrying will not help: 5xx replies, rejected credentials, malformed requests."""


@dataclass(frozen=True)
class SendResult:
    delivery_id: int
    accepted: bool
    provider_id: str | None = None
    permanent: bool = False  # for failures: True means do not retry
    bounce: bool = False  # for permanent failures: the address itself is bad (suppress it)
    error: str | None = None

    @classmethod
    def ok(cls, delivery_id: int, provider_id: str) -> SendResult:
        return cls(delivery_id, True, provider_id=provider_id)

    @classmethod
    def failed(cls, delivery_id: int, error: str, *, permanent: bool, bounce: bool = False) -> SendResult:
        return cls(delivery_id, False, permanent=permanent, bounce=bounce and permanent, error=error)


@runtime_checkable
class Transport(Protocol):
    name: str
    batch_size: int  # messages per send() call that share one commit (1 = exactly-once per message)
    wants_raw: bool  # sends OutgoingMessage.raw (SMTP, outbox); False: takes the fields (HTTP APIs)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send a batch; return one result per message, in order. Raise TransportError only for
        failures that hit the batch before anything was handed over."""
        ...

    def close(self) -> None: ...
