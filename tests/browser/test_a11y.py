"""The axe helper itself: it does flag real violations (so a clean result means something), and it
audits a page served over HTTP as well as an HTML string (the web pages will use ``url=``)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from playwright.sync_api import Page

from tests.browser.a11y import audit, describe
from tests.browser.conftest import Scheme

BAD = """<!DOCTYPE html><html><head><title>bad</title></head><body>
<p style="color:#bbbbbb;background:#ffffff">Faint text</p><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=">
<a href="/x"></a></body></html>"""
GOOD = """<!DOCTYPE html><html lang="en"><head><title>Fine</title></head><body><main>
<h1>Preferences</h1><form><label for="e">Email</label><input id="e" type="email"><button>Save</button></form>
</main></body></html>"""


@pytest.fixture
def served() -> Iterator[str]:
    """GOOD at http://127.0.0.1:PORT/ (loopback only)."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = GOOD.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


def test_flags_known_violations(new_page: Callable[[int, Scheme], Page]) -> None:
    found = {v["id"] for v in audit(new_page(800, "light"), html=BAD)}
    assert {"color-contrast", "image-alt", "link-name", "html-has-lang"} <= found, found


def test_audits_a_page_served_over_http(served: str, new_page: Callable[[int, Scheme], Page]) -> None:
    violations = audit(new_page(800, "light"), url=served)
    assert violations == [], describe(violations)
