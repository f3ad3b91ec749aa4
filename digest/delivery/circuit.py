"""The transport circuit: when the connection or the account fails, stop sending and pause.

A connection-class failure (login refused, TLS, certificate, DNS, connection refused, 5.7.x policy
before DATA, HTTP 401/403, account suspended) says nothing about any reader, and every message
after it would meet the same. The first worker to see one *opens* the circuit: one row per transport
in ``transport_circuits``, in the database, so every worker and the dispatcher see it. Opening
pauses every sending issue with the reason (shown on the dashboard, logged at ERROR once, exported
on ``/metrics``); no row is failed and no attempt is spent. While it is open, the dispatcher
*probes* the transport (connect and log in, or an authenticated GET) at most once per interval:
``DIGEST_PROBE_FIRST_SECONDS`` at first, doubling up to an hour. The probe that succeeds closes the
circuit and resumes the issues it paused; an editor resuming an issue closes it too.

Throttling (4.7.x, 421, HTTP 429) is kept here as well: ``throttled_until`` holds every worker back
until the server's Retry-After (or the circuit's first interval) has passed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Integer, String, Text, Update, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column, sessionmaker

from digest.db import Base, UTCDateTime, one_of, rowcount, session_scope
from digest.ledger.models import Issue, IssueStatus

log = logging.getLogger(__name__)

PROBE_MAX_SECONDS = 3600.0
PAUSED_BY_TRANSPORT = "transport"  # ``issues.paused_by`` of the issues the circuit paused


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"


class TransportCircuit(Base):
    __tablename__ = "transport_circuits"
    __table_args__ = (one_of("state", CircuitState),)

    transport: Mapped[str] = mapped_column(String(32), primary_key=True)
    state: Mapped[str] = mapped_column(String(8), default=CircuitState.CLOSED)
    reason: Mapped[str | None] = mapped_column(Text)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    next_probe_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    probe_seconds: Mapped[int] = mapped_column(Integer, default=0)
    throttled_until: Mapped[datetime | None] = mapped_column(UTCDateTime())


@dataclass(frozen=True)
class CircuitView:
    """What a chunk needs to know before it sends."""

    open: bool
    reason: str | None
    throttled_for: float  # seconds every worker still waits (0: not throttled)


class Circuit:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        transport: str,
        clock: Callable[[], datetime],
        *,
        probe_first_seconds: float = 30.0,
    ):
        self.sessions = sessions
        self.transport = transport
        self.clock = clock
        self.probe_first = max(1, int(probe_first_seconds))

    def _ensure(self, session: Session) -> None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(TransportCircuit).values(transport=self.transport).on_conflict_do_nothing())

    def view(self, session: Session) -> CircuitView:
        row = session.execute(
            select(TransportCircuit.state, TransportCircuit.reason, TransportCircuit.throttled_until).where(
                TransportCircuit.transport == self.transport
            )
        ).first()
        if row is None:
            return CircuitView(False, None, 0.0)
        state, reason, until = row
        wait = max(0.0, (until - self.clock()).total_seconds()) if until is not None else 0.0
        return CircuitView(state == CircuitState.OPEN, reason, wait)

    def open(self, reason: str) -> bool:
        """Open the circuit (if closed) and pause every sending issue; True if this call opened it.
        The ERROR is logged by the one caller that opened it, not once per message or worker."""
        now = self.clock()
        with session_scope(self.sessions) as session:
            self._ensure(session)
            last = session.execute(
                select(TransportCircuit.opened_at, TransportCircuit.probe_seconds).where(
                    TransportCircuit.transport == self.transport
                )
            ).one()
            # A fault that comes back within the hour after a probe passed (a relay that takes the
            # login but refuses every RCPT) keeps the longer interval instead of starting over.
            recent = last[0] is not None and now - last[0] < timedelta(seconds=PROBE_MAX_SECONDS)
            interval = int(min(PROBE_MAX_SECONDS, max(self.probe_first, last[1] or 0))) if recent else self.probe_first
            opened = _changed(
                update(TransportCircuit)
                .where(TransportCircuit.transport == self.transport, TransportCircuit.state == CircuitState.CLOSED)
                .values(
                    state=CircuitState.OPEN,
                    reason=reason,
                    opened_at=now,
                    probe_seconds=interval,
                    next_probe_at=now + timedelta(seconds=interval),
                ),
                session,
            )
            paused = pause_sending(session, reason)
        if opened:
            log.error(
                "transport %s failed: %s. Sending is paused (%d issue(s)); it resumes when a probe succeeds"
                " (first in %d s) or an editor resumes it",
                self.transport,
                reason,
                len(paused),
                interval,
            )
        return bool(opened)

    def claim_probe(self) -> bool:
        """True for the one caller whose turn it is to probe (the circuit is open and the probe due);
        the next probe is pushed back, doubling the interval up to an hour."""
        now = self.clock()
        with session_scope(self.sessions) as session:
            row = session.execute(
                select(TransportCircuit.probe_seconds, TransportCircuit.next_probe_at).where(
                    TransportCircuit.transport == self.transport, TransportCircuit.state == CircuitState.OPEN
                )
            ).first()
            if row is None or (row[1] is not None and row[1] > now):
                return False
            interval = int(min(PROBE_MAX_SECONDS, max(self.probe_first, 2 * (row[0] or 0))))
            claimed = _changed(
                update(TransportCircuit)
                .where(
                    TransportCircuit.transport == self.transport,
                    TransportCircuit.state == CircuitState.OPEN,
                    TransportCircuit.next_probe_at == row[1],
                )
                .values(probe_seconds=interval, next_probe_at=now + timedelta(seconds=interval)),
                session,
            )
            return bool(claimed)

    def probe_failed(self, reason: str) -> None:
        with session_scope(self.sessions) as session:
            session.execute(
                update(TransportCircuit)
                .where(TransportCircuit.transport == self.transport)
                .values(reason=reason)
                .execution_options(synchronize_session=False)
            )
            pause_sending(session, reason)  # issues planned or resumed meanwhile wait too
        log.warning("transport %s is still failing: %s", self.transport, reason)

    def close(self) -> list[int]:
        """Close the circuit and resume the issues it paused; returns their ids (to dispatch again)."""
        with session_scope(self.sessions) as session:
            was_open = _changed(
                update(TransportCircuit)
                .where(TransportCircuit.transport == self.transport, TransportCircuit.state == CircuitState.OPEN)
                .values(state=CircuitState.CLOSED, reason=None, next_probe_at=None),
                session,
            )
            resumed = list(
                session.scalars(
                    update(Issue)
                    .where(Issue.status == IssueStatus.PAUSED, Issue.paused_by == PAUSED_BY_TRANSPORT)
                    .values(status=IssueStatus.SENDING, paused_by=None, pause_reason=None)
                    .returning(Issue.id)
                    .execution_options(synchronize_session=False)
                )
            )
        if was_open:
            log.warning("transport %s works again: %d issue(s) resumed", self.transport, len(resumed))
        return resumed

    def throttle(self, seconds: float | None) -> float:
        """Hold every worker back ``seconds`` (the server's Retry-After, else the first probe
        interval); returns the wait."""
        wait = seconds if seconds is not None and seconds > 0 else float(self.probe_first)
        until = self.clock() + timedelta(seconds=wait)
        with session_scope(self.sessions) as session:
            self._ensure(session)
            session.execute(
                update(TransportCircuit)
                .where(
                    TransportCircuit.transport == self.transport,
                    (TransportCircuit.throttled_until.is_(None)) | (TransportCircuit.throttled_until < until),
                )
                .values(throttled_until=until)
                .execution_options(synchronize_session=False)
            )
        log.warning("transport %s is throttling us: every worker waits %.0f s", self.transport, wait)
        return wait


def _changed(statement: Update, session: Session) -> int:
    """Rows an UPDATE changed."""
    return rowcount(session.execute(statement.execution_options(synchronize_session=False)))


def open_circuits(session: Session) -> list[tuple[str, str]]:
    """(transport, reason) of every open circuit: what the dashboard shows as "sending is paused"."""
    rows = session.execute(
        select(TransportCircuit.transport, TransportCircuit.reason).where(TransportCircuit.state == CircuitState.OPEN)
    )
    return [(transport, reason or "") for transport, reason in rows]


def pause_sending(session: Session, reason: str) -> list[int]:
    """Pause every sending issue because the transport fails; returns their ids."""
    return list(
        session.scalars(
            update(Issue)
            .where(Issue.status == IssueStatus.SENDING)
            .values(status=IssueStatus.PAUSED, paused_by=PAUSED_BY_TRANSPORT, pause_reason=reason)
            .returning(Issue.id)
            .execution_options(synchronize_session=False)
        )
    )
