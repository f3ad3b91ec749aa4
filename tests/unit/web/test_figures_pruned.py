"""The editor's figures page of a campaign reads the same after ``digest prune`` deleted its ledger rows."""

from __future__ import annotations

import re
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.dispatch import send_issue
from digest.issues.links import follow
from digest.issues.retention import prune
from digest.ledger.models import Delivery
from digest.wiring import Services
from tests.factories import add_campaign, add_subscriber, add_summaries, summary_record


def test_figures_page_of_a_pruned_campaign_is_unchanged(
    editor_client: TestClient, services: Services, smtp_sink: SMTPSink
) -> None:
    now = services.clock()
    with session_scope(services.sessions) as s:
        add_summaries(
            s, summary_record(id="c-1", specialties=["cardiology"], published_at=(now - timedelta(days=1)).isoformat())
        )
        for n in range(3):
            add_subscriber(s, f"reader{n}@example.org", ["cardiology"], created_at=now - timedelta(days=5))
        issue_id = add_campaign(s, now, "A campaign to prune", pinned=["c-1"])
    send_issue(services, issue_id)
    assert len(smtp_sink.messages) == 3
    # One reader follows the summary's tracked link from the message they received.
    body = smtp_sink.messages[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    token = re.search(r"/r/([^\"'\s]+)", body).group(1)  # type: ignore[union-attr]
    with session_scope(services.sessions) as s:
        follow(s, services.links, token, now + timedelta(minutes=5))

    def page() -> str:
        response = editor_client.get(f"/editor/issues/{issue_id}/figures")
        assert response.status_code == 200
        return response.text

    before = page()
    assert re.search(r'data-figure="recipients">3<.*data-figure="sent">3<', before, re.S)
    report = prune(services.sessions, now + timedelta(days=30), 9)
    assert report.issues == [issue_id]
    with session_scope(services.sessions) as s:
        assert s.scalar(select(func.count()).select_from(Delivery).where(Delivery.issue_id == issue_id)) == 0
    after = page()
    # The figures and the chart with its table, to the character. (The clicks per summary and per
    # link below them are read from the ledger rows and are not kept by a prune.)
    assert _figures(after) == _figures(before)


def _figures(html: str) -> str:
    main = html.split("<main", 1)[1].split("</main>", 1)[0]
    return main.split('id="figures"', 1)[1].split("<h2>Clicks per summary</h2>", 1)[0]
