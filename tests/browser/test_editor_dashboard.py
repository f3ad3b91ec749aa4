"""The automatic digests on the dashboard, in Chromium at 375 and 1280 px against the real app:
after digests went out the run is listed with figures equal to the ledger (counted by SQL here),
its page shows clicks per summary and per link, and pausing asks first (with the audience size),
stops the dispatcher, and resuming sends what was due exactly once. Every page fits the width and
has no target under 44 px. Screenshots go to tests/artifacts/editor/."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta

import pytest
from playwright.sync_api import Page
from sqlalchemy import text

from digest import dispatch
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.editors.service import EditorIn, create_editor
from digest.issues.links import follow
from tests.browser.a11y import audit, describe
from tests.browser.conftest import Live, Scheme, sign_in
from tests.browser.targets import assert_fits
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record

PASSWORD = "a long editor password"
READERS = {
    "cara@example.org": ["cardiology"],
    "onco@example.org": ["oncology"],
    "both@example.org": ["cardiology", "oncology"],
}
RUN = "daily:2026-11-27"


def _seed_and_send(live: Live, smtp_sink: SMTPSink, clock: Clock) -> None:
    now = clock()
    with session_scope(live.services.sessions) as s:
        create_editor(s, EditorIn("editor@example.org", PASSWORD, "Europe/Berlin"))
        add_summaries(
            s,
            *(
                summary_record(
                    id=f"{slug}-{n}",
                    title=f"{slug.capitalize()} trial {n}",
                    specialties=[slug],
                    published_at=days_before(now, n),
                    source_url=f"https://journal.example/{slug}/{n}",
                )
                for slug in ("cardiology", "oncology")
                for n in (1, 2)
            ),
        )
        for email, chosen in READERS.items():
            add_subscriber(s, email, chosen, created_at=now - timedelta(days=3))
    dispatch.send_due(live.services, now)
    assert len(smtp_sink.received) == 3
    # Two readers follow links: "both" one link twice and another once, cara one.
    tokens = {}
    for r in smtp_sink.received:
        html = r.message.get_body(preferencelist=("html",)).get_content()
        tokens[r.rcpt_tos[0]] = sorted(set(re.findall(re.escape(live.url) + r"/r/([^\"'<>\s]+)", html)))
    clock.advance(minutes=10)
    with session_scope(live.services.sessions) as s:
        for token in (tokens["both@example.org"][0], tokens["both@example.org"][0], tokens["both@example.org"][1]):
            follow(s, live.services.links, token, clock())
        follow(s, live.services.links, tokens["cara@example.org"][0], clock())


def _ledger(live: Live) -> dict[str, int]:
    """The run's figures straight from the ledger."""
    with session_scope(live.services.sessions) as s:
        by_status = dict(
            s.execute(
                text(
                    "SELECT d.status, count(*) FROM deliveries d JOIN issues i ON i.id = d.issue_id "
                    "WHERE i.kind = 'digest' AND d.period_key = :k GROUP BY d.status"
                ),
                {"k": RUN},
            ).all()
        )
        clicks, unique = s.execute(
            text(
                "SELECT count(c.id), count(DISTINCT c.delivery_id) FROM clicks c "
                "JOIN deliveries d ON d.id = c.delivery_id WHERE d.period_key = :k"
            ),
            {"k": RUN},
        ).one()
    return {
        "recipients": sum(by_status.values()),
        "sent": by_status.get("sent", 0),
        "failed": by_status.get("failed", 0),
        "clicks": clicks,
        "unique_clicks": unique,
    }


def _log_in(page: Page, live: Live) -> None:
    sign_in(page, live.url, "/editor/issues", PASSWORD)


@pytest.mark.parametrize("width", [375, 1280])
def test_digest_runs_on_the_dashboard_and_pause_resume(
    live: Live, new_page: Callable[[int, Scheme], Page], smtp_sink: SMTPSink, clock: Clock, width: int
) -> None:
    _seed_and_send(live, smtp_sink, clock)
    page = new_page(width)
    _log_in(page, live)

    # The dashboard: the run, not "nothing sent", with the ledger's figures.
    main = page.inner_text("main")
    assert "No issue has been sent yet" not in main and "Running" in page.inner_text("#flow-state")
    row = page.locator(f'tr[data-run="{RUN}"] td')
    cells = row.all_inner_texts()
    ledger = _ledger(live)
    assert cells[0] == "Daily 2026-11-27"
    assert [int(c) for c in cells[2:5]] == [ledger["recipients"], ledger["sent"], ledger["failed"]]
    assert [int(c) for c in cells[7:9]] == [ledger["clicks"], ledger["unique_clicks"]] == [4, 2]
    assert page.locator('svg.chart[aria-label^="Digests sent"]').count() == 1  # the runs' chart, as the campaigns'
    assert_fits(page, width, "dashboard")
    assert not (found := audit(page)), describe(found)
    live.shot(page, f"runs-dashboard-{width}")

    # The run's page: figures, chart, clicks per summary and per link.
    page.click(f'tr[data-run="{RUN}"] a')
    page.wait_for_url(f"{live.url}/editor/runs/{RUN}")
    for name in ("recipients", "sent", "failed", "clicks", "unique_clicks"):
        assert int(page.inner_text(f'[data-figure="{name}"]')) == ledger[name], name
    assert page.locator("svg.chart").count() == 1
    links = {
        tr.locator("td").nth(0).inner_text().split("\n")[0]: [int(x) for x in tr.locator("td.num").all_inner_texts()]
        for tr in page.locator("#per-link tbody tr").all()
    }
    with session_scope(live.services.sessions) as s:
        per_url = dict(
            s.execute(
                text(
                    "SELECT s.title, count(*) FROM clicks c JOIN summaries s ON s.source_url = c.url "
                    "JOIN deliveries d ON d.id = c.delivery_id WHERE d.period_key = :k GROUP BY s.title"
                ),
                {"k": RUN},
            ).all()
        )
    assert {title: counts[0] for title, counts in links.items()} == per_url
    assert sum(per_url.values()) == ledger["clicks"] and len(per_url) >= 2  # each link its own row
    summaries = page.locator("#per-summary tbody tr").all_inner_texts()
    assert len(summaries) == 4  # every summary the run carried, clicked or not
    assert_fits(page, width, "run page")
    assert not (found := audit(page)), describe(found)
    live.shot(page, f"runs-detail-{width}")
    dark = new_page(width, "dark")  # the same session, in dark mode
    dark.context.add_cookies(page.context.cookies())
    for path, name in ((f"/editor/runs/{RUN}", "runs-detail"), ("/editor/issues", "runs-dashboard")):
        dark.goto(f"{live.url}{path}")
        assert_fits(dark, width, f"{name} (dark)")
        assert not (found := audit(dark)), describe(found)  # contrast included
        live.shot(dark, f"{name}-{width}-dark")

    # Pause: a confirmation with the audience size first; then the dispatcher plans nothing.
    page.goto(f"{live.url}/editor/issues")
    page.click("text=Pause the automatic digests")
    assert "3 active subscriber(s)" in page.inner_text("#confirm-message")
    assert_fits(page, width, "pause confirmation")
    assert not (found := audit(page)), describe(found)
    live.shot(page, f"runs-pause-confirm-{width}")
    page.click("button:has-text('Pause the automatic digests')")
    page.wait_for_url(re.compile(r".*/editor/issues"))
    assert page.inner_text("#flow-state").startswith("Paused")
    live.shot(page, f"runs-paused-{width}")
    smtp_sink.clear()
    clock.advance(days=1)
    with session_scope(live.services.sessions) as s:
        add_summaries(
            s, summary_record(id="cardiology-new", specialties=["cardiology"], published_at=days_before(clock(), 0.1))
        )
    assert dispatch.send_due(live.services, clock()).digests_paused
    assert smtp_sink.received == []

    # Resume: the digests due now go out, exactly once.
    page.click("text=Resume the automatic digests")
    page.click("button:has-text('Resume the automatic digests')")
    page.wait_for_url(re.compile(r".*/editor/issues"))
    assert page.inner_text("#flow-state").startswith("Running")
    dispatch.send_due(live.services, clock())
    dispatch.send_due(live.services, clock())
    assert sorted(r.rcpt_tos[0] for r in smtp_sink.received) == ["both@example.org", "cara@example.org"]


def test_the_dashboard_in_french_reads_whole_on_a_phone(
    live: Live, new_page: Callable[[int, Scheme], Page], smtp_sink: SMTPSink, clock: Clock
) -> None:
    """French headings are longer than English ones: stacked at 375 px, each keeps its words whole
    ("Désabonnements" broke mid-word), and the tables' captions span the page."""
    _seed_and_send(live, smtp_sink, clock)
    page = new_page(375)
    _log_in(page, live)
    page.set_extra_http_headers({"Accept-Language": "fr"})
    page.reload()
    assert page.locator('tr[data-run] td[data-label="Désabonnements"]').count() == 1
    assert page.locator("#runs caption").inner_text().startswith("Un envoi par période")
    assert_fits(page, 375, "the French dashboard")
    live.shot(page, "runs-dashboard-fr-375")
