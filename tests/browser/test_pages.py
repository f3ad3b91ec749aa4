"""The subscriber pages (sign-up, preferences, unsubscribe, erasure, and what follows them) in Chromium:
no serious or critical axe-core violation, no horizontal scroll at 375px, in light and dark.

The HTML is what the app serves (through FastAPI's TestClient); the pages carry their CSS inline,
so Chromium shows exactly what a browser would get from ``digest serve``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from playwright.sync_api import Page

from digest.db import session_scope
from digest.subscribers.tokens import Purpose
from digest.wiring import Services
from tests.browser.a11y import audit, describe
from tests.conftest import Clock
from tests.factories import add_subscriber

WIDTHS = (375, 1280)
SCHEMES = ("light", "dark")


def _pages(web: TestClient, services: Services, clock: Clock) -> dict[str, str]:
    with session_scope(services.sessions) as s:
        sid = add_subscriber(
            s,
            "reader@example.org",
            ["cardiology", "oncology"],
            name="Ada Reader",
            created_at=clock() - timedelta(days=1),
        ).id
    prefs = services.tokens.make(Purpose.PREFERENCES, sid)
    unsub = services.tokens.make(Purpose.UNSUBSCRIBE, sid)
    pages = {
        "signup": web.get("/"),
        "signup-errors": web.post("/subscribe", data={"email": "not an address", "timezone": "Mars/Base"}),
        "preferences": web.get(f"/preferences/{prefs}"),
        "unsubscribe": web.get(f"/unsubscribe/{unsub}"),
        "unsubscribed": web.post(f"/unsubscribe/{unsub}", data={"List-Unsubscribe": "One-Click"}),
        "invalid-link": web.get("/unsubscribe/forged-token"),
        "erase": web.get(f"/preferences/{prefs}/erase"),
        "erase-unconfirmed": web.post(f"/preferences/{prefs}/erase", data={}),
        "erased": web.post(f"/preferences/{prefs}/erase", data={"confirm": "yes"}),
    }
    for name, response in pages.items():
        assert response.headers["content-type"].startswith("text/html"), name
        assert response.status_code < 500, name
    return {name: response.text for name, response in pages.items()}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("width", WIDTHS)
def test_pages_are_accessible_and_fit_the_screen(
    web: TestClient,
    services: Services,
    clock: Clock,
    new_page: Callable[[int, str], Page],
    artifacts: Path,
    width: int,
    scheme: str,
) -> None:
    out = artifacts / "pages"
    out.mkdir(exist_ok=True)
    for name, html in _pages(web, services, clock).items():
        page = new_page(width, scheme)
        violations = audit(page, html=html)
        assert not violations, f"{name} at {width}px, {scheme}:\n{describe(violations)}"
        assert page.evaluate("document.documentElement.lang") == "en", name
        if width == 375:
            assert page.evaluate("document.documentElement.scrollWidth") <= 375, f"{name} scrolls sideways at 375px"
        page.screenshot(path=str(out / f"{name}-{width}-{scheme}.png"), full_page=True)
