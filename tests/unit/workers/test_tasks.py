"""The planning task's dispatch reads ids a page at a time and resumes from its checkpoint, and retry
countdowns stay bounded and under the broker's visibility timeout."""

from __future__ import annotations

from sqlalchemy import select

from digest.db import session_scope
from digest.delivery.models import Delivery
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
