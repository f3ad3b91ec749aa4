"""``digest.ingest.service``: what a summary import reports as it goes (the CLI draws it as a bar)."""

from __future__ import annotations

from digest.db import session_scope
from digest.ingest.service import import_summaries
from digest.wiring import Services
from tests.factories import summary_record


def test_import_reports_each_record_checked_then_each_valid_one_written(services: Services) -> None:
    records = [(n, summary_record(id=f"s{n}", specialties=["cardiology"])) for n in range(1, 4)]
    records.append((4, {"id": "bad"}))
    seen: list[tuple[str, int, int]] = []
    with session_scope(services.sessions) as session:
        report = import_summaries(
            session, records, skip_invalid=True, progress=lambda step, done, total: seen.append((step, done, total))
        )
    assert report.created == 3 and report.skipped
    assert seen == [("checking", n, 4) for n in range(1, 5)] + [("writing", n, 3) for n in range(1, 4)]


def test_a_patient_title_is_stored_one_line_and_is_optional(services: Services) -> None:
    from digest.ingest.models import Summary

    records = [
        (1, summary_record(id="plain", patient_title="  A new valve  through\na blood vessel ")),
        (2, summary_record(id="none")),
    ]
    with session_scope(services.sessions) as session:
        import_summaries(session, records)
    with session_scope(services.sessions) as session:
        titles = {s.id: s.patient_title for s in session.query(Summary)}
    assert titles == {"plain": "A new valve through a blood vessel", "none": None}
