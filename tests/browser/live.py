"""The web app served on a loopback port (uvicorn in a thread), for Chromium to visit: shared by the
subscriber-flow tests and the screenshot script (tests/browser/screenshots.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from digest.config import Settings
from digest.delivery.sink import free_port
from digest.web.app import create_app
from digest.wiring import Services


def loopback_settings(settings: Settings) -> Settings:
    """``settings`` with DIGEST_BASE_URL on a free loopback port, so the links in emails reach the app."""
    return settings.model_copy(update={"base_url": f"http://127.0.0.1:{free_port()}"})


@contextmanager
def serving(services: Services) -> Iterator[str]:
    """Serve the app at its settings' base URL until the block ends; yields that URL."""
    url = services.settings.base_url.rstrip("/")
    port = int(url.rsplit(":", 1)[1])
    server = uvicorn.Server(
        uvicorn.Config(create_app(services), host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
