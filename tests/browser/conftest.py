"""Browser fixtures: Playwright driving the system's Chromium (Debian's /usr/bin/chromium).

Never `playwright install`: the browser is the one on the machine. If it is missing the browser
tests fail in CI with a message that says how to install it (on a developer machine they are skipped).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest
import uvicorn
from playwright.sync_api import Browser, Page, sync_playwright

from digest.config import Settings
from digest.delivery.sink import free_port
from digest.web.app import create_app
from digest.wiring import Services, build_services
from tests.conftest import Clock, require

CHROMIUM = os.environ.get("DIGEST_TEST_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

Scheme = Literal["light", "dark"]


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    require(
        Path(CHROMIUM).is_file(),
        f"Chromium at {CHROMIUM}",
        "apt-get install -y chromium, or point DIGEST_TEST_CHROMIUM at a Chromium binary",
    )
    with sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield chromium
        chromium.close()


@pytest.fixture
def new_page(browser: Browser) -> Iterator[Callable[[int, Scheme], Page]]:
    """A factory of pages with a given viewport width and colour scheme; all closed after the test."""
    contexts = []

    def make(width: int, scheme: Scheme = "light") -> Page:
        context = browser.new_context(
            viewport={"width": width, "height": 900}, color_scheme=scheme, java_script_enabled=True
        )
        contexts.append(context)
        page = context.new_page()
        page.emulate_media(color_scheme=scheme)
        return page

    yield make
    for context in contexts:
        context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    """tests/artifacts/ (gitignored): screenshots kept for people to look at."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test under tests/browser/ carries the ``browser`` marker (select or deselect with -m)."""
    here = Path(__file__).resolve().parent
    for item in items:
        if here in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@dataclass
class Live:
    url: str
    services: Services
    shots: Path

    def shot(self, page: Page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 0
        return path


@pytest.fixture
def live(settings: Settings, clock: Clock, artifacts: Path) -> Iterator[Live]:
    """The web app on a free loopback port, its base URL pointing at itself, over the test database
    and SMTP sink; worker tasks use the same services."""
    from workers import app as worker_app
    from workers import tasks

    port = free_port()
    url = f"http://127.0.0.1:{port}"
    live_settings = settings.model_copy(update={"base_url": url})
    services = build_services(live_settings, clock=clock)
    worker_app.configure(live_settings)
    tasks.use_services(services)
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    shots = artifacts / "editor"
    shots.mkdir(parents=True, exist_ok=True)
    yield Live(url, services, shots)
    server.should_exit = True
    thread.join(timeout=10)
    tasks.use_services(None)
    services.close()


def sign_in(page: Page, base_url: str, path: str, password: str) -> None:
    """Open the editor's ``path`` as editor@example.org: it asks for the login, then comes back to ``path``."""
    page.goto(f"{base_url}{path}")
    page.fill("#email", "editor@example.org")
    page.fill("#password", password)
    page.click("button:has-text('Log in')")
    page.wait_for_url(f"{base_url}{path}")
