"""Factories for test data: plain functions over a session (records go through the real services)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


# -- feeds ------------------------------------------------------------------------------------------
def feed_entry(n: int, **overrides: Any) -> dict[str, Any]:
    """One feed item: guid, title, html description, link, categories, published (aware datetime)."""
    entry: dict[str, Any] = {
        "guid": f"https://evidence.example.org/summaries/{n}",
        "title": f"Trial {n} reports its primary outcome",
        "description": f"<p>Drug {n} cut admissions by a fifth vs. placebo. The trial enrolled 1,200 adults.</p>",
        "link": f"https://evidence.example.org/summaries/{n}",
        "categories": ["Cardiology"],
        "published": datetime(2026, 11, 25, 9, 0, tzinfo=UTC) - timedelta(hours=n),
        "key_takeaway": None,
    }
    entry.update(overrides)
    return entry


def rss_feed(*entries: dict[str, Any]) -> str:
    from email.utils import format_datetime
    from xml.sax.saxutils import escape

    from digest.ingest.feeds import DIGEST_NS

    items = []
    for e in entries:
        parts = [f"<title>{escape(e['title'])}</title>"] if e.get("title") else []
        if e.get("guid"):
            parts.append(f"<guid isPermaLink=\"false\">{escape(e['guid'])}</guid>")
        if e.get("link"):
            parts.append(f"<link>{escape(e['link'])}</link>")
        if e.get("description"):
            parts.append(f"<description>{escape(e['description'])}</description>")
        parts += [f"<category>{escape(c)}</category>" for c in e.get("categories", [])]
        if e.get("published"):
            parts.append(f"<pubDate>{format_datetime(e['published'])}</pubDate>")
        if e.get("key_takeaway"):
            parts.append(f"<ev:key_takeaway>{escape(e['key_takeaway'])}</ev:key_takeaway>")
        items.append("<item>" + "".join(parts) + "</item>")
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0" xmlns:ev="{DIGEST_NS}"><channel>'
        "<title>Evidence summaries</title><link>https://evidence.example.org/</link><description>x</description>"
        + "".join(items)
        + "</channel></rss>"
    )


def atom_feed(*entries: dict[str, Any]) -> str:
    from xml.sax.saxutils import escape

    items = []
    for e in entries:
        items.append(
            f"<entry><id>{escape(e['guid'])}</id><title>{escape(e['title'])}</title>"
            f'<link rel="alternate" href="{escape(e["link"])}"/>'
            f"<updated>{e['published'].isoformat()}</updated>"
            f'<summary type="html">{escape(e["description"])}</summary>'
            + "".join(f'<category term="{escape(c)}"/>' for c in e.get("categories", []))
            + "</entry>"
        )
    return (
        '<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
        "<title>Evidence summaries</title><id>urn:x-test:feed</id><updated>2026-11-25T09:00:00Z</updated>"
        + "".join(items)
        + "</feed>"
    )


def json_feed(*entries: dict[str, Any]) -> str:
    import json

    items = []
    for e in entries:
        item: dict[str, Any] = {
            "id": e["guid"],
            "url": e["link"],
            "title": e["title"],
            "content_html": e["description"],
            "date_published": e["published"].isoformat(),
            "tags": e.get("categories", []),
        }
        if e.get("key_takeaway"):
            item["_digest"] = {"key_takeaway": e["key_takeaway"]}
        items.append(item)
    return json.dumps({"version": "https://jsonfeed.org/version/1.1", "title": "Evidence summaries", "items": items})
