"""Review the summary versions ingest stored since the last review: open the correction a material
change calls for, and start the safety alert a record flagged ``urgent`` asks for.

Ingest only records facts (digest/ingest/versions.py): it sits below the ledger's readers and the
subscribers an alert goes to. Every send cycle (``digest send``, each beat tick) reviews first, as do
``digest corrections list`` and the dashboard's corrections page, so whatever path a record came in
by (file, feed, API), what it calls for is opened once: each version is reviewed once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.corrections.alerts import alert_for_record
from digest.corrections.service import open_correction
from digest.ingest.models import Summary, SummaryVersion


@dataclass
class Review:
    corrections: list[int] = field(default_factory=list)  # opened or moved on, pending approval
    alerts: list[int] = field(default_factory=list)  # safety alert issues started (sending)


def review_versions(session: Session, now: datetime) -> Review:
    """Open what the unreviewed versions call for, in the order they were stored; mark them reviewed."""
    review = Review()
    versions = session.scalars(
        select(SummaryVersion).where(SummaryVersion.reviewed.is_(False)).order_by(SummaryVersion.id).with_for_update()
    ).all()
    for version in versions:
        summary = session.get(Summary, version.summary_id)
        if summary is not None:
            correction = open_correction(session, summary, version, now) if version.version > 1 else None
            if correction is not None and correction not in review.corrections:
                review.corrections.append(correction)
            if version.urgent and version.version == summary.version:
                alert = alert_for_record(session, summary, now)
                if alert is not None:
                    review.alerts.append(alert)
        version.reviewed = True
    session.flush()
    return review
