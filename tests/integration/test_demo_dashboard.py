"""After `digest demo` sent its digests, the dashboard shows them as a run (the issue's report: it
said "No issue has been sent yet"): one run per cadence period served (the sample list has daily
and weekly readers), whose messages add up to what the SMTP server received."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from digest.config import Settings
from digest.db import session_scope
from digest.demo import run_demo
from digest.editors.service import EditorIn, create_editor
from digest.web.app import create_app
from digest.wiring import build_services
from tests.unit.web.conftest import csrf_of


def test_the_dashboard_lists_the_demo_digests_as_a_run(settings: Settings) -> None:
    result = run_demo(settings)
    assert result.received >= 40
    services = build_services(settings)
    try:
        with session_scope(services.sessions) as s:
            create_editor(s, EditorIn("ed@example.org", "a long editor password"))
        with TestClient(create_app(services), base_url="https://testserver", follow_redirects=False) as client:
            token = csrf_of(client.get("/editor/login").text)
            client.post(
                "/editor/login",
                data={"email": "ed@example.org", "password": "a long editor password", "csrf_token": token},
            )
            page = client.get("/editor/issues").text
    finally:
        services.close()
    assert "No issue has been sent yet" not in page and "No automatic digest has been sent yet" not in page
    runs = re.findall(r'<tr data-run="((?:daily|weekly):[^"]+)">(.*?)</tr>', page, re.S)
    assert runs and {key.split(":")[0] for key, _ in runs} <= {"daily", "weekly"}
    figures = [[int(n) for n in re.findall(r'<td[^>]*class="num"[^>]*>(\d+)</td>', row)[:2]] for _, row in runs]
    assert sum(sent for _, sent in figures) == sum(due for due, _ in figures) == result.received
