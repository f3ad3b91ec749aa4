"""A database connection killed during a send (``pg_terminate_backend``, as a failover or an
operator does): the chunk hands its unfinished rows back at once, so every reader gets the digest in
the same dispatch, not after the lease."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select, text

from digest.config import Settings
from digest.db import make_engine, session_scope
from digest.delivery.sink import SMTPSink
from digest.delivery.transport import SendResult
from digest.ledger.models import Delivery, DeliveryStatus
from digest.providers.smtp.transport import SMTPConfig, SMTPTransport
from digest.rendering.message import OutgoingMessage
from digest.wiring import build_services
from tests.conftest import Clock, on_postgresql_only
from tests.factories import planned_issue

PEOPLE = [(f"k{i}@example.org", f"K {i}", ["cardiology"]) for i in range(12)]


class KillingTransport(SMTPTransport):
    """SMTP to the sink; at the sends numbered in ``kill_at`` it first terminates the database
    backends of this worker that are inside a transaction (its own, holding the batch's rows)."""

    def __init__(self, url: str, database_url: str, kill_at: set[int]):
        super().__init__(SMTPConfig.from_url(url))
        self.admin = make_engine(database_url)
        self.kill_at = kill_at
        self.calls = 0
        self.killed = 0

    def send(self, messages: Sequence[OutgoingMessage]) -> list[SendResult]:
        self.calls += 1
        with self.admin.connect() as conn:
            if self.calls in self.kill_at:
                self.killed += (
                    conn.scalar(
                        text(
                            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                            "WHERE datname = current_database() "
                            "AND pid <> pg_backend_pid() AND state = 'idle in transaction'"
                        )
                    )
                    or 0
                )
                conn.commit()
        return super().send(messages)

    def close(self) -> None:
        super().close()
        self.admin.dispose()


@on_postgresql_only
def test_killed_connections_hand_the_rest_of_the_chunk_back_at_once(
    settings: Settings, clock: Clock, smtp_sink: SMTPSink
) -> None:
    transport = KillingTransport(smtp_sink.url, settings.database_url, kill_at={3, 8})
    svc = build_services(settings, transport=transport, clock=clock)
    ids = planned_issue(svc, clock(), PEOPLE)

    svc.queue.deliver_chunk(ids)  # one chunk, as a worker gets it; the clock does not move

    assert transport.killed >= 2
    with session_scope(svc.sessions) as s:
        statuses = dict(s.execute(select(Delivery.status, func.count()).group_by(Delivery.status)).all())
    assert statuses == {DeliveryStatus.SENT: len(PEOPLE)}
    received = [r.rcpt_tos[0] for r in smtp_sink.received]
    assert sorted(set(received)) == sorted(p[0] for p in PEOPLE)  # everyone, in this dispatch
    assert len(received) - len(set(received)) <= 2  # at most the message in flight per kill, same Message-ID
    svc.close()
