"""Dispatch reads ids a page at a time, queues a page of chunks per checkpoint and resumes from it."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from digest import dispatch
from digest.db import session_scope
from digest.ledger.models import Delivery, Issue
from digest.selection.service import pending_page
from digest.wiring import Services
from tests.conftest import Clock, on_postgresql_only
from tests.factories import planned_issue


class RecordingQueue:
    """Keeps what would be handed to the workers, and the checkpoint committed when each chunk was queued."""

    def __init__(self, services: Services) -> None:
        self.services = services
        self.chunks: list[list[int]] = []
        self.confirmations: list[int] = []

    def deliver_chunk(self, delivery_ids: list[int]) -> None:
        self.chunks.append(delivery_ids)

    def send_confirmation(self, subscriber_id: int) -> None:
        self.confirmations.append(subscriber_id)

    def close(self) -> None:
        return None


def _issue_id(services: Services) -> int:
    with session_scope(services.sessions) as session:
        issue_id = session.scalar(select(Delivery.issue_id))
    assert issue_id is not None
    return issue_id


def test_pages_follow_the_keyset(services: Services, clock: Clock) -> None:
    ids = planned_issue(services, clock(), [(f"s{i}@example.org", "", ["cardiology"]) for i in range(25)])
    issue_id = _issue_id(services)
    pages, after = [], ids[2]
    while True:
        with session_scope(services.sessions) as session:
            page = pending_page(session, issue_id, 10, after=after)
        if not page:
            break
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [10, 10, 2]
    assert [i for p in pages for i in p] == ids[3:]


@pytest.mark.parametrize("broker", [False, True])
def test_dispatch_queues_chunks_a_page_at_a_time_and_checkpoints_each_page(
    services: Services, clock: Clock, monkeypatch: pytest.MonkeyPatch, broker: bool
) -> None:
    ids = planned_issue(services, clock(), [(f"s{i}@example.org", "", ["cardiology"]) for i in range(25)])
    issue_id = _issue_id(services)
    queue = RecordingQueue(services)
    checkpoints: list[int] = []
    update = {"chunk_size": 2, "broker_url": "redis://127.0.0.1:1/0" if broker else None}
    monkeypatch.setattr(services, "settings", services.settings.model_copy(update=update))
    monkeypatch.setattr(services, "queue", queue)
    monkeypatch.setattr(dispatch, "CHUNKS_PER_PAGE", 3)

    def page(session, issue, size, *, after):
        checkpoints.append(session.scalar(select(Issue.dispatched_through).where(Issue.id == issue)) or 0)
        return pending_page(session, issue, size, after=after)

    monkeypatch.setattr(dispatch, "pending_page", page)

    assert dispatch.dispatch_issue(services, issue_id) == 13
    assert [i for chunk in queue.chunks for i in chunk] == ids and {len(c) for c in queue.chunks[:-1]} == {2}
    assert checkpoints == [0, ids[5], ids[11], ids[17], ids[23], ids[24]]  # one commit per page of six ids
    # Dispatched again (a redelivered planning task): with a broker it carries on from the checkpoint,
    # in-process it queues every open row (transient failures wait there for the next run).
    queue.chunks.clear()
    assert dispatch.dispatch_issue(services, issue_id) == (0 if broker else 13)


@on_postgresql_only  # SQLite admits one writer at a time: the second planner waits for the whole first one
def test_two_dispatches_planning_the_same_period_at_once_both_finish(
    services: Services, clock: Clock, database_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The second planner waits on the first one's rows (the ledger's unique keys), then finds the
    period planned: no exception, no ERROR or traceback logged, and it goes on to the campaign and
    stalled-issue steps."""
    import threading

    from sqlalchemy import text

    from digest.selection.service import plan_digests
    from tests.factories import add_campaign, add_summaries, bulk_subscribers, days_before, summary_record

    now = clock()
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="c1", specialties=["cardiology"], published_at=days_before(now, 1)))
        bulk_subscribers(s, [("x@example.org", "X", ["cardiology"])], created_at=now - timedelta(days=3))
        campaign = add_campaign(s, now, subject="Scheduled", pinned=["c1"])
        s.execute(
            Issue.__table__.update()  # type: ignore[attr-defined]
            .where(Issue.id == campaign)
            .values(status="scheduled", scheduled_at=now - timedelta(minutes=1))
        )
    first = services.sessions()
    plan_digests(first, now, services.plan_options())  # planned, not yet committed
    outcome: dict[str, object] = {}

    def second() -> None:
        try:
            outcome["run"] = dispatch.send_due(services, now)
        except Exception as exc:  # what the test is about: there must be none
            outcome["error"] = exc

    thread = threading.Thread(target=second)
    thread.start()
    with services.engine.connect() as conn:  # wait until the second planner waits on the first's rows
        for _ in range(500):
            waiting = conn.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock'"
                )
            )
            if waiting:
                break
            thread.join(0.02)
    with caplog.at_level(logging.INFO):
        first.commit()
        first.close()
        thread.join(60)

    assert "error" not in outcome, outcome.get("error")
    run = outcome["run"]
    assert isinstance(run, dispatch.SendRun) and run.plan.issue_id is None
    assert [c.issue_id for c in run.campaigns] == [campaign]  # the steps after planning still ran
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    assert "another dispatch planned the digests" in caplog.text
    with session_scope(services.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.period_key.is_not(None))) == 1


class FailingQueue(RecordingQueue):
    """The broker (or the dispatcher's database connection) goes away after ``works`` chunks."""

    def __init__(self, services: Services, works: int) -> None:
        super().__init__(services)
        self.works = works

    def deliver_chunk(self, delivery_ids: list[int]) -> None:
        if len(self.chunks) >= self.works:
            raise ConnectionError("Connection to the broker lost")
        super().deliver_chunk(delivery_ids)


def test_a_dispatch_stopped_half_way_carries_on_from_its_checkpoint_at_the_next_tick_not_the_lease(
    services: Services, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = planned_issue(services, clock(), [(f"s{i}@example.org", "", ["cardiology"]) for i in range(25)])
    update = {"chunk_size": 2, "broker_url": "redis://127.0.0.1:1/0", "lease_seconds": 600, "dispatch_seconds": 60}
    monkeypatch.setattr(services, "settings", services.settings.model_copy(update=update))
    monkeypatch.setattr(dispatch, "CHUNKS_PER_PAGE", 3)
    queue = FailingQueue(services, works=4)
    monkeypatch.setattr(services, "queue", queue)

    with pytest.raises(ConnectionError):
        dispatch.send_due(services, clock())  # the first page is queued and checkpointed, then the broker goes
    assert [i for chunk in queue.chunks for i in chunk] == ids[:8]

    queue.works = 100
    clock.advance(seconds=30)
    assert dispatch.send_due(services, clock()).chunks == 0  # within the tick: the dispatch may still be running
    clock.advance(seconds=31)
    run = dispatch.send_due(services, clock())  # the next tick, long before the lease

    assert run.redispatched == [_issue_id(services)]
    assert [i for chunk in queue.chunks[4:] for i in chunk] == ids[6:]  # from the checkpoint after the first page
    assert dispatch.send_due(services, clock.advance(seconds=61)).chunks == 0  # everything queued: nothing more
