"""An SMTP server on loopback that misbehaves like real ones do, and remembers what it accepted.

Faults (decided per recipient and attempt from a fixed seed, so a run is reproducible whatever the
order in which workers reach the server):

- ``451`` at RCPT or after DATA for about ``transient_rate`` of attempts (try again later);
- ``550`` at RCPT, always, for the addresses in ``bounce`` (the mailbox does not exist);
- one connection closed after the message was transmitted and before the server answered DATA:
  the client cannot know whether the server kept it (this one it did not);
- a slow answer (``slow_seconds``) to DATA for about ``slow_rate`` of messages;
- on request (:meth:`FaultyHandler.hold_next`), one message accepted and its 250 held back until the
  test releases it: the test SIGKILLs the worker that sent it meanwhile, which is the window no
  protocol closes (accepted by the server, never recorded by the sender).

Every accepted message is recorded as (Message-ID, recipient, monotonic time of the 250), so a test
can count copies per Message-ID and compare acceptance times with other events in this process.
"""

from __future__ import annotations

import asyncio
import hashlib
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email.parser import BytesHeaderParser

from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass(frozen=True)
class Accepted:
    message_id: str
    rcpt: str
    at: float  # time.monotonic() when the server decided to answer 250


@dataclass
class FaultCounts:
    transient: int = 0
    bounced: int = 0
    dropped: int = 0
    slow: int = 0

    @property
    def total(self) -> int:
        return self.transient + self.bounced + self.dropped + self.slow


@dataclass
class FaultyHandler:
    seed: int = 7
    transient_rate: float = 0.05
    slow_rate: float = 0.005
    slow_seconds: float = 1.0
    bounce: frozenset[str] = frozenset()
    drop_after: int = 100  # drop the connection carrying the message after this many were accepted
    accepted: list[Accepted] = field(default_factory=list)
    faults: FaultCounts = field(default_factory=FaultCounts)
    _attempts: Counter[str] = field(default_factory=Counter)
    _dropped: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _hold: bool = False
    held: tuple[int, Accepted] | None = None  # (client port, the message) once one is held
    holding: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def hold_next(self) -> None:
        """Accept the next message, then hold its 250 until ``release`` is set (at most 60 s)."""
        with self._lock:
            self._hold = True

    def _roll(self, kind: str, rcpt: str, attempt: int) -> float:
        digest = hashlib.sha256(f"{self.seed}:{kind}:{rcpt}:{attempt}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    def _count(self, kind: str) -> None:
        with self._lock:
            setattr(self.faults, kind, getattr(self.faults, kind) + 1)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, rcpt_options: list[str]
    ) -> str:
        if address in self.bounce:
            self._count("bounced")
            return f"550 5.1.1 <{address}>: mailbox does not exist"
        with self._lock:
            self._attempts[address] += 1
            attempt = self._attempts[address]
        # Half the transient faults come at RCPT, half after DATA.
        if self._roll("rcpt", address, attempt) < self.transient_rate / 2:
            self._count("transient")
            return "451 4.3.0 temporary failure, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        [rcpt] = envelope.rcpt_tos
        attempt = self._attempts[rcpt]
        with self._lock:
            drop = not self._dropped and len(self.accepted) >= self.drop_after
            self._dropped = self._dropped or drop
        if drop:
            self._count("dropped")
            assert server.transport is not None
            server.transport.abort()  # the message arrived; the answer never will
            return "421 4.3.0 closing"  # written to a closed transport: never seen by the client
        if self._roll("data", rcpt, attempt) < self.transient_rate / 2:
            self._count("transient")
            return "451 4.3.0 temporary failure, try again later"
        if self._roll("slow", rcpt, attempt) < self.slow_rate:
            self._count("slow")
            await asyncio.sleep(self.slow_seconds)
        headers = BytesHeaderParser().parsebytes(envelope.original_content or b"")
        accepted = Accepted(str(headers["Message-ID"]), rcpt, time.monotonic())
        with self._lock:
            self.accepted.append(accepted)
            hold, self._hold = self._hold, False
        if hold:
            self.held = (int(session.peer[1]), accepted)
            self.holding.set()
            deadline = time.monotonic() + 60
            while not self.release.is_set() and time.monotonic() < deadline:
                await asyncio.sleep(0.01)
        return "250 2.0.0 accepted"

    def copies(self) -> Counter[str]:
        """Accepted messages per Message-ID."""
        with self._lock:
            return Counter(a.message_id for a in self.accepted)

    def snapshot(self) -> list[Accepted]:
        with self._lock:
            return list(self.accepted)
