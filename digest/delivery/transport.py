"""The transport seam: a few methods that move fully rendered messages, nothing else.

Headers, rate limits, retries and suppression live above this line; a transport only reports, per
message, whether it was accepted (with the provider's id) or what failed (a ``Failure`` class).

What failed decides what happens to the row (digest/delivery/service.py):

- ``RECIPIENT``: the address is bad (5.1.x, 5.2.1, a provider's "inactive recipient"): the row
  fails and the address is suppressed.
- ``MESSAGE``: this message was refused (content, size): the row fails, the address is kept.
- ``TEMPORARY``: it was tried and may work later (4xx, a drop during DATA): the row stays pending
  and the attempt counts towards the give-up limit.
- ``THROTTLED``: the server asks us to slow down (4.7.x, 421, HTTP 429): nothing counts against the
  row; every worker waits (``retry_after``) and the batch is retried.
- ``CONNECTION``: the connection or the account is at fault (authentication, TLS, certificate, DNS,
  refused, 5.7.x policy before DATA, HTTP 401/403, account suspended): nothing counts against any
  row, the transport circuit opens and the sending issues pause until a probe succeeds.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol, runtime_checkable

from digest.rendering.message import OutgoingMessage


class Failure(StrEnum):
    RECIPIENT = "recipient"
    MESSAGE = "message"
    TEMPORARY = "temporary"
    THROTTLED = "throttled"
    CONNECTION = "connection"


# Failures that say nothing about the message: no attempt is counted against its row, and the rest
# of its batch is not tried (the next message would meet the same).
NOT_COUNTED = frozenset({Failure.THROTTLED, Failure.CONNECTION})


class TransportError(Exception):
    """A failure that concerns a whole batch, raised before anything of it was handed over."""

    failure = Failure.TEMPORARY
    retry_after: float | None = None


class TransientError(TransportError):
    """Worth retrying later: dropped connections, timeouts, server errors."""


class ConnectionFailure(TransientError):
    """The connection or the account is at fault (login refused, TLS, certificate, DNS, refused,
    a policy refusal, a revoked API key): an operator or time must fix it; no message is to blame."""

    failure = Failure.CONNECTION


class Throttled(TransientError):
    """The server asks us to slow down; ``retry_after`` seconds when it said how long."""

    failure = Failure.THROTTLED

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class SendResult:
    delivery_id: int
    accepted: bool
    provider_id: str | None = None
    failure: Failure | None = None  # set when not accepted
    error: str | None = None
    retry_after: float | None = None  # THROTTLED: seconds the server asked us to wait, if it said

    @property
    def permanent(self) -> bool:
        """Retrying will not help this message: the row fails."""
        return self.failure in (Failure.RECIPIENT, Failure.MESSAGE)

    @property
    def bounce(self) -> bool:
        """The address itself is bad: suppress it."""
        return self.failure == Failure.RECIPIENT

    @classmethod
    def ok(cls, delivery_id: int, provider_id: str) -> SendResult:
        return cls(delivery_id, True, provider_id=provider_id)

    @classmethod
    def failed(cls, delivery_id: int, error: str, failure: Failure, *, retry_after: float | None = None) -> SendResult:
        return cls(delivery_id, False, failure=failure, error=error, retry_after=retry_after)

    @classmethod
    def untried(cls, delivery_id: int, cause: TransportError | SendResult) -> SendResult:
        """Not handed over, because of ``cause`` (a batch failure, or an earlier message's result)."""
        error = str(cause) if isinstance(cause, TransportError) else f"not tried: {cause.error}"
        failure = cause.failure or Failure.TEMPORARY
        return cls(delivery_id, False, failure=failure, error=error, retry_after=cause.retry_after)


@runtime_checkable
class Transport(Protocol):
    name: str
    batch_size: int  # messages per send() call that share one commit (1 = exactly-once per message)
    wants_raw: bool  # sends OutgoingMessage.raw (SMTP, outbox); False: takes the fields (HTTP APIs)

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        """Send a batch; return one result per message, in order. Raise TransportError only for
        failures that hit the batch before anything was handed over."""
        ...

    def probe(self) -> None:
        """Check that a message could be handed over now (connect, log in); raise TransportError
        if not. The circuit calls it, once per probe, while sending is paused."""
        ...

    def close(self) -> None: ...
