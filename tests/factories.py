"""Factories for test data: plain functions over a session (records go through the real services)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from itertools import count
from typing import Any

from sqlalchemy.orm import Session

from digest.ingest.models import Specialty, Summary
from digest.ingest.schema import SummaryIn
from digest.ingest.service import import_summaries
from digest.ingest.specialties import SPECIALTIES
from digest.ledger.carried import carried
from digest.ledger.models import Delivery, SelectionItem
from digest.rendering.compiled import Variant
from digest.rendering.compose import build_variant
from digest.rendering.message import OutgoingMessage
from digest.rendering.personalisation import Recipient
from digest.resources import sample_data
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
        "study": {
            "type": "randomised controlled trial",
            "sample_size": 1000 + n,
            "evidence_level": 2,
            "published": "2026-10",
        },
        "outcomes": [
            {"name": "Primary outcome", "measure": "HR", "value": 0.8, "ci_low": 0.7, "ci_high": 0.9, "p": "<0.001"}
        ],
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


def sample_summaries(count: int = 8, *, with_patient_summary: bool = True) -> list[Summary]:
    """Transient Summary rows (no session) from the shipped sample data, for rendering tests."""
    records = json.loads(sample_data("summaries.json").read_text(encoding="utf-8"))
    names = dict(SPECIALTIES)
    rows = []
    for record in records:
        if with_patient_summary and not record.get("patient_summary"):
            continue
        data = SummaryIn.model_validate(record)
        rows.append(
            Summary(
                id=data.id, **data.columns(), specialties=[Specialty(slug=s, name=names[s]) for s in data.specialties]
            )
        )
    return rows[:count]


SAMPLE_ISSUE: dict[str, Any] = {
    "id": 1,
    "subject": "",
    "preheader": "",
    "intro_html": "",
    "intro_text": "",
    "web_url": "",
}


def sample_variant(edition: str, count: int = 8, issue: dict[str, Any] | None = None) -> Variant:
    """A variant over ``count`` sample summaries, for a reader who follows all their specialties."""
    summaries = sample_summaries(count)
    specialties = {s.slug: s.name for row in summaries for s in row.specialties}
    return build_variant(edition, summaries, specialties, issue or SAMPLE_ISSUE)


SAMPLE_RECIPIENT = Recipient(
    email="reader@example.org",
    name="Ada Reader",
    unsubscribe_url="https://digest.example.org/unsubscribe/TOKEN",
    preferences_url="https://digest.example.org/preferences/TOKEN",
)


def bulk_subscribers(
    session: Session, people: list[tuple[str, str, list[str]]], *, created_at: datetime, status: str = "active"
) -> None:
    """Insert many confirmed subscribers in a few statements: (email, name, specialty slugs) each."""
    from sqlalchemy import insert, select

    from digest.ingest.specialties import specialty_map
    from digest.subscribers.models import subscriber_specialties

    session.execute(
        insert(Subscriber),
        [
            {"email": email, "name": name, "status": status, "created_at": created_at, "confirmed_at": created_at}
            for email, name, _ in people
        ],
    )
    ids = dict(
        session.execute(
            select(Subscriber.email, Subscriber.id).where(Subscriber.email.in_([p[0] for p in people]))
        ).all()
    )
    slugs = {slug: s.id for slug, s in specialty_map(session).items()}
    session.execute(
        insert(subscriber_specialties),
        [{"subscriber_id": ids[email], "specialty_id": slugs[slug]} for email, _, chosen in people for slug in chosen],
    )


def outgoing(
    delivery_id: int, to_email: str, name: str = "", *, subject: str = "Your evidence digest"
) -> OutgoingMessage:
    """A fully rendered message as the composer hands it to a transport (for transport tests)."""
    from datetime import UTC

    from digest.rendering.headers import build_mime, list_unsubscribe

    msg = OutgoingMessage(
        delivery_id=delivery_id,
        message_id=f"<digest.1.{delivery_id}.abc@news.example.org>",
        from_header="Evidence Digest <digest@news.example.org>",
        to_email=to_email,
        to_name=name,
        subject=subject,
        text=f"Hello {name or 'reader'},\nKey takeaway: treatment A helps.\n",
        html=f"<html><body><p>Hello {name or 'reader'},</p><p>Key takeaway: treatment A helps.</p></body></html>",
        headers=(
            ("List-Id", "Clinical evidence digest <clinical-evidence-digest.news.example.org>"),
            *list_unsubscribe(
                f"https://digest.example.org/unsubscribe/tok{delivery_id}",
                f"unsubscribe+m{delivery_id}@news.example.org",
            ),
        ),
    )
    raw = build_mime(msg, datetime(2026, 11, 27, 12, 0, tzinfo=UTC)).as_bytes()
    return OutgoingMessage(**{**msg.__dict__, "raw": raw})


def planned_issue(services: Any, now: datetime, people: list[tuple[str, str, list[str]]]) -> list[int]:
    """Summaries in cardiology, oncology and dermatology, these subscribers (joined three days ago),
    and one planned digest issue; returns its delivery ids in id order."""
    from sqlalchemy import select

    from digest.db import session_scope
    from digest.ledger.models import Delivery
    from digest.selection.service import plan_digests

    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="cardio-a", specialties=["cardiology"], published_at=days_before(now, 1)),
            summary_record(id="onc-a", specialties=["oncology"], published_at=days_before(now, 1)),
            summary_record(id="derm-a", specialties=["dermatology"], published_at=days_before(now, 2)),
        )
        bulk_subscribers(s, people, created_at=now - timedelta(days=3))
    with session_scope(services.sessions) as s:
        plan = plan_digests(s, now, services.plan_options())
    with session_scope(services.sessions) as s:
        return list(s.scalars(select(Delivery.id).where(Delivery.issue_id == plan.issue_id).order_by(Delivery.id)))


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
            parts.append(f'<guid isPermaLink="false">{escape(e["guid"])}</guid>')
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


def add_campaign(session: Session, now: datetime, subject: str = "Editor's picks", **draft: Any) -> int:
    """A draft campaign issue (digest/issues) with the given IssueDraft fields; returns its id."""
    from digest.issues.service import IssueDraft, create_issue

    for key in ("specialties", "pinned"):
        if key in draft:
            draft[key] = tuple(draft[key])
    return create_issue(session, IssueDraft(subject=subject, **draft), None, now).id


def carried_by_email(session: Session, issue_id: int | None = None) -> dict[str, list[str]]:
    """Subscriber address -> the summary ids their deliveries carry, in message order (one issue's,
    or every issue's)."""
    query = (
        carried()
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .with_only_columns(Subscriber.email, SelectionItem.summary_id)
        .order_by(Subscriber.email, SelectionItem.position)
    )
    if issue_id is not None:
        query = query.where(Delivery.issue_id == issue_id)
    out: dict[str, list[str]] = {}
    for email, summary_id in session.execute(query):
        out.setdefault(email, []).append(summary_id)
    return out
