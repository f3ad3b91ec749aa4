"""The subscriber list in Chromium at 375 and 1280 px: filters, the CSV export of what matches,
a CSV import from the browser, unsubscribe and suppress behind a confirmation. The list stacks on a
phone; no page scrolls sideways and no target is under 44 px."""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import Page
from sqlalchemy import select

from digest.db import session_scope
from digest.editors.service import EditorIn, create_editor
from digest.subscribers.models import Subscriber
from digest.subscribers.suppression import is_suppressed
from tests.browser.a11y import audit, describe
from tests.browser.conftest import Live, Scheme, sign_in
from tests.browser.targets import assert_fits
from tests.conftest import Clock
from tests.factories import add_subscriber

PASSWORD = "a long editor password"


@pytest.mark.parametrize("width", [375, 1280])
def test_filter_export_import_unsubscribe_suppress(
    live: Live, new_page: Callable[[int, Scheme], Page], clock: Clock, tmp_path: Path, width: int
) -> None:
    with session_scope(live.services.sessions) as s:
        create_editor(s, EditorIn("editor@example.org", PASSWORD, "Europe/Berlin"))
        add_subscriber(s, "cara@example.org", ["cardiology"], name="Cara Jones", created_at=clock())
        add_subscriber(s, "onco@example.org", ["oncology"], created_at=clock(), edition="patient")
        add_subscriber(
            s, "a.very.long.address.for.a.narrow.phone@hospital.example.org", ["oncology"], created_at=clock()
        )
    page = new_page(width)
    sign_in(page, live.url, "/editor/subscribers", PASSWORD)
    assert_fits(page, width, "subscribers page")
    assert not (found := audit(page)), describe(found)
    live.shot(page, f"subscribers-{width}")

    page.select_option("#f-specialty", "oncology")
    page.select_option("#f-edition", "patient")
    page.click("button:has-text('Filter')")
    page.wait_for_url(re.compile(r".*specialty=oncology.*"))
    assert page.locator("#people tbody tr").evaluate_all("rs => rs.map(r => r.dataset.email)") == ["onco@example.org"]
    with page.expect_download() as download:
        page.click("text=Export these as CSV")
    exported = Path(download.value.path()).read_text()
    assert [r["email"] for r in csv.DictReader(io.StringIO(exported))] == ["onco@example.org"]

    upload = tmp_path / "new.csv"
    upload.write_text("email,specialties,name\nnew@example.org,cardiology;oncology,New Reader\n")
    page.set_input_files("#file", str(upload))
    page.click("button:has-text('Import')")
    page.wait_for_load_state()
    assert "Imported new.csv: 1 new, 0 updated." in page.inner_text("#notice")
    assert_fits(page, width, "subscribers page after import")

    page.goto(f"{live.url}/editor/subscribers?q=cara")
    page.click("text=Unsubscribe…")
    assert "Unsubscribe cara@example.org?" in page.inner_text("#confirm-message")
    assert_fits(page, width, "unsubscribe confirmation")
    page.click("button:has-text('Yes, unsubscribe')")
    page.wait_for_load_state()
    assert "cara@example.org is unsubscribed." in page.inner_text("#notice")
    page.click("text=Suppress…")
    page.click("button:has-text('Yes, suppress')")
    page.wait_for_load_state()
    live.shot(page, f"subscribers-after-actions-{width}")
    with session_scope(live.services.sessions) as s:
        statuses = dict(s.execute(select(Subscriber.email, Subscriber.status)).all())
        assert statuses["cara@example.org"] == "unsubscribed" and statuses["new@example.org"] == "active"
        assert is_suppressed(s, "cara@example.org")
