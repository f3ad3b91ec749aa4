"""The dashboard's corrections and safety alerts: the approval screen's reader counts and editable
note, and the safety alert button, checked by what reaches the SMTP server and what the pages show."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from fastapi.testclient import TestClient

from digest import dispatch
from digest.corrections.models import Correction, CorrectionStatus
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ingest.service import import_summaries
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record
from tests.integration.test_safety_alerts import EXPECTED, SAFETY, alert_record, seed_alert_audience
from tests.unit.web.conftest import csrf_of


def test_editor_approves_with_an_edited_note_seeing_readers_per_edition(
    editor_client: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    record = summary_record(id="statin-1", specialties=["cardiology"], published_at=days_before(clock(), 1))
    with session_scope(services.sessions) as s:
        add_summaries(s, record)
        past = clock() - timedelta(days=3)
        add_subscriber(s, "a@example.org", ["cardiology"], created_at=past)
        add_subscriber(s, "b@example.org", ["cardiology"], created_at=past)
        add_subscriber(s, "p@example.org", ["cardiology"], edition="patient", created_at=past)
    dispatch.send_due(services, clock())
    smtp_sink.clear()
    with session_scope(services.sessions) as s:
        add_summaries(s, {**record, "outcomes": [], "safety": "Two deaths from rhabdomyolysis were reported."})

    page = editor_client.get("/editor/corrections")
    assert page.status_code == 200
    assert "Readers who got an earlier version:</strong>\n  2 clinician, 1 patient" in page.text
    assert "outcomes and safety" in page.text and "as a notice of its own" in page.text
    # What changed, in the editor's language (stored in English, as readers' notices are).
    spanish = editor_client.get("/editor/corrections", headers={"Accept-Language": "es"}).text
    assert "cambia resultados y seguridad." in spanish and "changed outcomes" not in spanish
    french = editor_client.get("/editor/corrections", headers={"Accept-Language": "fr"}).text
    assert "critères de jugement et sécurité" in french
    note = "We left out two deaths from rhabdomyolysis and an outcome we could not verify."
    approve_url = page.text.split('action="/editor/corrections/', 1)[1].split('"', 1)[0]
    response = editor_client.post(
        f"/editor/corrections/{approve_url}", data={"csrf_token": csrf_of(page.text), "note": note}
    )
    assert response.status_code == 303
    got = {r.rcpt_tos[0]: r.message for r in smtp_sink.received}
    assert set(got) == {"a@example.org", "b@example.org", "p@example.org"} and len(smtp_sink.received) == 3
    for msg in got.values():
        assert note in msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    after = editor_client.get("/editor/corrections")
    assert "No correction is waiting." in after.text
    # Approving again is refused: it went once.
    again = editor_client.post(f"/editor/corrections/{approve_url}", data={"csrf_token": csrf_of(after.text)})
    assert again.status_code == 409


def test_editor_dismisses_a_correction_and_nobody_is_told(
    editor_client: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock, cli: Any
) -> None:
    record = summary_record(id="statin-2", specialties=["cardiology"], published_at=days_before(clock(), 1))
    with session_scope(services.sessions) as s:
        add_summaries(s, record)
        add_subscriber(s, "a@example.org", ["cardiology"], created_at=clock() - timedelta(days=3))
    dispatch.send_due(services, clock())
    smtp_sink.clear()
    with session_scope(services.sessions) as s:
        add_summaries(s, {**record, "key_takeaway": "The same finding, reworded by the journal."})

    page = editor_client.get("/editor/corrections")
    dismiss_url = re.search(r'action="(/editor/corrections/(\d+)/dismiss)"', page.text)
    assert dismiss_url and "1 clinician" in page.text
    response = editor_client.post(dismiss_url.group(1), data={"csrf_token": csrf_of(page.text)})
    assert response.status_code == 303
    after = editor_client.get("/editor/corrections")
    assert "No correction is waiting." in after.text and "/dismiss" not in after.text
    assert cli("corrections", "list").stdout.strip() == ""
    assert dispatch.send_due(services, clock()).corrections == [] and smtp_sink.received == []
    with session_scope(services.sessions) as s:
        correction = s.get(Correction, int(dismiss_url.group(2)))
        assert correction is not None and correction.status == CorrectionStatus.DISMISSED
    # Approving it afterwards is refused, and still nothing is sent.
    refused = editor_client.post(
        f"/editor/corrections/{dismiss_url.group(2)}/approve", data={"csrf_token": csrf_of(after.text)}
    )
    assert refused.status_code == 409 and "is dismissed, not pending" in refused.text
    assert dispatch.send_due(services, clock()).corrections == [] and smtp_sink.received == []


def test_safety_alert_button_sends_once_and_shows_in_the_figures(
    editor_client: TestClient, services: Services, smtp_sink: SMTPSink, clock: Clock
) -> None:
    seed_alert_audience(services, clock)
    with session_scope(services.sessions) as s:
        import_summaries(s, [(1, alert_record(urgent=False))])
    page = editor_client.get("/editor/corrections")
    form = {"csrf_token": csrf_of(page.text), "summary_id": "drug-x", "note": ""}
    assert editor_client.post("/editor/alerts", data=form).status_code == 303
    assert {r.rcpt_tos[0] for r in smtp_sink.received} == EXPECTED and len(smtp_sink.received) == 2
    assert all(SAFETY in r.message.get_body(preferencelist=("plain",)).get_content() for r in smtp_sink.received)  # type: ignore[union-attr]

    assert editor_client.post("/editor/alerts", data=form).status_code == 409  # a second click sends nothing
    assert len(smtp_sink.received) == 2

    figures = editor_client.get("/editor/corrections").text
    row = figures.split("Safety alert: Drug X: liver injury", 1)[1].split("</tr>", 1)[0]
    cells = [c.split("</td>")[0] for c in re.split(r'<td[^>]*class="num"[^>]*>', row)[1:]]
    assert cells == ["2", "2", "0", "0", "0"]  # recipients, sent, failed, not sent, unsubscribes
    assert "Safety alert: Drug X: liver injury" in editor_client.get("/editor/issues").text  # the chart's table
