"""Factories for test data: plain functions over a session (records go through the real services)."""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy.orm import Session

from digest.ingest.service import import_summaries
from digest.subscribers.models import Subscriber
from digest.subscribers.schema import SubscriberIn
from digest.subscribers.service import upsert_subscriber

_ids = count(1)


def summary_record(**overrides: Any) -> dict[str, Any]:
    n = next(_ids)
    record: dict[str, Any] = {
        "id": f"summary-{n}",
        "title": f"Study {n} changes practice",
        "key_takeaway": f"Takeaway {n}: treatment A lowers the hazard of the outcome (HR 0.80).",
        "summary": "A randomised trial.\n\nMore detail.",
        "patient_summary": f"In plain words, treatment A helped in study {n}.",
        "specialties": ["cardiology"],
        "study": {"type": "randomised controlled trial", "sample_size": 1000 + n, "evidence_level": 2, "published": "2026-10"},
        "outcomes": [{"name": "Primary outcome", "measure": "HR", "value": 0.8, "ci_low": 0.7, "ci_high": 0.9, "p": "<0.001"}],
        "safety": "No excess of serious adverse events.",
        "source_url": f"https://example.org/summaries/summary-{n}",
        "published_at": "2026-11-26T09:00:00Z",
    }
    record.update(overrides)
    return record


def add_summaries(session: Session, *records: dict[str, Any]) -> None:
    import_summaries(session, list(enumerate(records, start=1)))


def add_subscriber(
    session: Session,
    email: str,
    specialties: list[str],
    *,
    created_at: datetime | None = None,
    **fields: Any,
) -> Subscriber:
    data = SubscriberIn(email=email, specialties=specialties, **fields)
    row, _ = upsert_subscriber(session, data, confirmed=True, now=created_at)
    if created_at is not None:
        row.created_at = created_at
        row.confirmed_at = created_at
    return row


def days_before(now: datetime, days: float) -> str:
    return (now - timedelta(days=days)).isoformat()


def add_campaign(session: Session, now: datetime, subject: str = "Editor's picks", **draft: Any) -> int:
    """A draft campaign issue (digest/issues) with the given IssueDraft fields; returns its id."""
    from digest.issues.service import IssueDraft, create_issue

    for key in ("specialties", "pinned"):
        if key in draft:
            draft[key] = tuple(draft[key])
    return create_issue(session, IssueDraft(subject=subject, **draft), None, now).id
