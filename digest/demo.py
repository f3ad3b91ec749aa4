"""``digest demo``: the main job on embedded defaults, end to end, on this machine alone.

SQLite in ``var/``, no broker (tasks run in-process through the Celery task code), a real SMTP
server (aiosmtpd) on a free loopback port, and the shipped sample data. What the server received is
written to ``var/outbox/`` as ``.eml`` and ``.html`` files with a browsable ``index.html``.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from email import message_from_bytes, policy
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from digest.config import Settings
from digest.db import session_scope, utcnow
from digest.delivery.sink import Received, SMTPSink
from digest.dispatch import send_due
from digest.ingest.models import Summary
from digest.ingest.service import import_summaries
from digest.ingest.specialties import seed_specialties
from digest.ledger.carried import carried
from digest.ledger.models import Delivery, DeliveryStatus
from digest.resources import sample_data, sample_data_path
from digest.schema import upgrade
from digest.subscribers.models import Subscriber
from digest.subscribers.service import import_subscribers
from digest.wiring import build_services


@dataclass(frozen=True)
class DemoRow:
    email: str
    specialties: str
    cadence: str
    items: int
    subject: str


@dataclass(frozen=True)
class DemoResult:
    seeded: bool
    issue_id: int | None
    rows: list[DemoRow]
    received: int
    outbox: Path
    subscribers: int
    summaries: int


def sample_records(now: datetime) -> list[tuple[int, dict[str, object]]]:
    """The shipped summaries, with dates moved so the newest was published an hour ago."""
    records = json.loads(sample_data("summaries.json").read_text(encoding="utf-8"))
    newest = max(datetime.fromisoformat(r["published_at"]) for r in records)
    shift = (now - timedelta(hours=1)) - newest
    for record in records:
        record["published_at"] = (datetime.fromisoformat(record["published_at"]) + shift).isoformat()
    return list(enumerate(records, start=1))


def seed(session: Session, now: datetime) -> bool:
    """Load the sample data into an empty database; leave existing data alone. True if it seeded."""
    seed_specialties(session)
    if session.scalar(select(func.count()).select_from(Summary)):
        return False
    import_summaries(session, sample_records(now), source="sample summaries.json")
    with sample_data_path("subscribers.csv") as path:
        import_subscribers(session, path)
    return True


def run_demo(settings: Settings) -> DemoResult:
    outbox = settings.outbox_dir or settings.var_dir / "outbox"
    with SMTPSink() as sink:
        settings = settings.model_copy(update={"smtp_url": sink.url, "transport": "smtp", "broker_url": None})
        services = build_services(settings)
        try:
            upgrade(services.engine)
            now = utcnow()
            with session_scope(services.sessions) as session:
                seeded = seed(session, now)
            run = send_due(services, now, include_new_subscribers=True)
        finally:
            services.transport.close()
        received = list(sink.received)
    write_outbox(outbox, received)
    with session_scope(services.sessions) as session:
        subjects = {r.rcpt_tos[0]: str(r.message["Subject"]) for r in received}
        rows = _rows(session, run.plan.issue_id, subjects)
        subscribers = session.scalar(select(func.count()).select_from(Subscriber)) or 0
        summaries = session.scalar(select(func.count()).select_from(Summary)) or 0
    services.engine.dispose()
    return DemoResult(seeded, run.plan.issue_id, rows, len(received), outbox, subscribers, summaries)


def _rows(session: Session, issue_id: int | None, subjects: dict[str, str]) -> list[DemoRow]:
    if issue_id is None:
        return []
    counts = dict(
        session.execute(
            carried()
            .with_only_columns(Delivery.id, func.count())
            .where(Delivery.issue_id == issue_id)
            .group_by(Delivery.id)
        ).all()
    )
    out = []
    for delivery, subscriber in session.execute(
        select(Delivery, Subscriber)
        .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
        .where(Delivery.issue_id == issue_id, Delivery.status == DeliveryStatus.SENT)
        .order_by(Subscriber.email)
    ).all():
        out.append(
            DemoRow(
                email=subscriber.email,
                specialties=", ".join(s.slug for s in subscriber.specialties),
                cadence=subscriber.cadence,
                items=counts.get(delivery.id, 0),
                subject=subjects.get(subscriber.email, ""),
            )
        )
    return out


def _safe_name(value: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", value).strip("_")[:80]


def write_outbox(outbox: Path, received: list[Received]) -> list[Path]:
    """Write each received message as .eml and .html and rebuild index.html; returns the new .eml paths."""
    outbox.mkdir(parents=True, exist_ok=True)
    written = []
    for item in received:
        msg = item.message
        stem = _safe_name(f"{item.rcpt_tos[0]}--{str(msg['Message-ID']).strip('<>')}")
        eml = outbox / f"{stem}.eml"
        eml.write_bytes(item.raw)
        html_part = msg.get_body(preferencelist=("html",))
        (outbox / f"{stem}.html").write_text(html_part.get_content() if html_part else "", encoding="utf-8")
        written.append(eml)
    write_index(outbox)
    return written


_OUTBOX_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2rem auto;max-width:64rem;padding:0 1rem;color:#1c2430}\n"
    "table{border-collapse:collapse;width:100%}"
    "td,th{text-align:left;padding:.4rem;border-bottom:1px solid #dde3ea;vertical-align:top}"
)
_OUTBOX_HEADINGS = "".join(f'<th scope="col">{name}</th>' for name in ("To", "Subject", "Date", "Raw"))


def write_index(outbox: Path) -> Path:
    """index.html listing every message in the outbox (from earlier runs too), newest first."""
    entries = []
    for eml in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
        msg = message_from_bytes(eml.read_bytes(), policy=policy.default)
        entries.append((str(msg["To"]), str(msg["Subject"]), str(msg["Date"]), eml.stem))
    rows = "\n".join(
        f'<tr><td>{html.escape(to)}</td><td><a href="{html.escape(stem)}.html">{html.escape(subject)}</a></td>'
        f'<td>{html.escape(date)}</td><td><a href="{html.escape(stem)}.eml">raw .eml</a></td></tr>'
        for to, subject, date, stem in entries
    )
    index = outbox / "index.html"
    index.write_text(
        f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>digest outbox</title>
<style>{_OUTBOX_STYLE}</style>
</head><body><h1>digest outbox</h1><p>{len(entries)} message(s) received by the demo SMTP server.</p>
<table><thead><tr>{_OUTBOX_HEADINGS}</tr></thead>
<tbody>
{rows}
</tbody></table></body></html>
""",
        encoding="utf-8",
    )
    return index
