"""Dispatch reads ids a page at a time, queues a page of chunks per checkpoint and resumes from it."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from digest import dispatch
from digest.db import session_scope
from digest.ledger.models import Delivery, Issue
from digest.selection.service import pending_page
from digest.wiring import Services
from tests.conftest import Clock
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
