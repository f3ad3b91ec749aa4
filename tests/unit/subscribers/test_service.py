"""``digest.subscribers.service``: what a bulk import reports as it goes (the CLI draws it as a bar)."""

from __future__ import annotations

from pathlib import Path

from digest.db import session_scope
from digest.subscribers.service import import_subscribers
from digest.wiring import Services


def test_csv_import_reports_each_row_checked_then_each_row_written(services: Services, tmp_path: Path) -> None:
    csv = tmp_path / "subscribers.csv"
    lines = ["email,specialties,cadence,timezone,name"] + [
        f"reader{i}@example.org,cardiology,daily,Europe/Berlin,Reader {i}" for i in range(5)
    ]
    csv.write_text("\n".join([*lines, "broken,cardiology,daily,UTC,"]) + "\n")
    seen: list[tuple[str, int, int]] = []
    with session_scope(services.sessions) as session:
        report = import_subscribers(
            session, csv, skip_invalid=True, progress=lambda step, done, total: seen.append((step, done, total))
        )
    assert report.created == 5 and len(report.skipped) == 1
    assert seen == [("checking", n, 6) for n in range(1, 7)] + [("writing", n, 5) for n in range(1, 6)]
