"""The planning task's dispatch reads ids a page at a time, queues a page of chunks per checkpoint and
resumes from it, and retry
countdowns stay bounded and under the broker's visibility timeout."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from digest.db import session_scope
from digest.ledger.models import Delivery, Issue
from digest.selection.service import pending_page
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import planned_issue
from workers import tasks
from workers.app import VISIBILITY_TIMEOUT


def test_pages_follow_the_keyset(services: Services, clock: Clock) -> None:
    ids = planned_issue(services, clock(), [(f"s{i}@example.org", "", ["cardiology"]) for i in range(25)])
    with session_scope(services.sessions) as session:
        issue_id = session.scalar(select(Delivery.issue_id))
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


def test_backoff_is_jittered_exponential_and_bounded() -> None:
    for retries in range(12):
        ceiling = min(tasks.BACKOFF_CAP, tasks.BACKOFF_BASE * 2**retries)
        samples = [tasks.backoff(retries) for _ in range(200)]
        assert all(0 <= s <= ceiling for s in samples)
        assert len(set(samples)) > 100  # jittered, not a fixed delay
    assert tasks.BACKOFF_CAP < VISIBILITY_TIMEOUT
    assert tasks.deliver_chunk.max_retries >= 8  # a row gives up after 8 claims: the task retries as often


def test_dispatch_queues_chunks_a_page_at_a_time_and_checkpoints_each_page(
    services: Services, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = planned_issue(services, clock(), [(f"s{i}@example.org", "", ["cardiology"]) for i in range(25)])
    with session_scope(services.sessions) as session:
        issue_id = session.scalar(select(Delivery.issue_id))
    queued: list[list[int]] = []
    checkpoints: list[int] = []
    monkeypatch.setattr(services, "settings", services.settings.model_copy(update={"chunk_size": 2}))
    monkeypatch.setattr(tasks, "CHUNKS_PER_PAGE", 3)
    monkeypatch.setattr(tasks.deliver_chunk, "delay", queued.append)
    real_page = tasks.pending_page

    def page(session, issue, size, *, after):  # type: ignore[no-untyped-def]
        checkpoints.append(session.scalar(select(Issue.dispatched_through).where(Issue.id == issue)) or 0)
        return real_page(session, issue, size, after=after)

    monkeypatch.setattr(tasks, "pending_page", page)

    assert tasks.dispatch_issue(issue_id) == 13
    assert [i for chunk in queued for i in chunk] == ids and {len(c) for c in queued[:-1]} == {2}
    assert checkpoints == [0, ids[5], ids[11], ids[17], ids[23], ids[24]]  # one commit per page of six ids
