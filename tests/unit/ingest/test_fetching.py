"""The feed fetching policy against a real HTTP server on loopback: SSRF refusals on resolved
addresses, redirects re-checked, the connection made to the checked address, a size cap, one
deadline across slow reads, and a bound on feeds polled at once."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from ipaddress import ip_network

import pytest

from digest.db import session_scope
from digest.ingest.feeds import poll_feeds
from digest.ingest.fetching import FetchPolicy, FetchRefused, get
from digest.ingest.models import FeedSource, FeedStatus
from digest.wiring import Services
from tests.factories import feed_entry, rss_feed

ONLY_127_0_0_1 = (ip_network("127.0.0.1/32"),)


class Server:
    """Routes: /feed (a small RSS), /big (2 MB, with or without Content-Length), /slow (a byte
    every 0.2 s), /to-metrics (a redirect to 127.0.0.2), /hold (0.5 s, counting requests in flight)."""

    def __init__(self) -> None:
        self.in_flight = 0
        self.most_in_flight = 0
        self.lock = threading.Lock()
        self.hosts: list[str] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                server.hosts.append(self.headers.get("Host", ""))
                if self.path == "/feed":
                    self._send(rss_feed(feed_entry(1)).encode())
                elif self.path.startswith("/big"):
                    body = b"x" * 2_000_000
                    if "chunked" in self.path:
                        self.send_response(200)
                        self.send_header("Connection", "close")
                        self.end_headers()
                        for i in range(0, len(body), 65536):
                            self.wfile.write(body[i : i + 65536])
                    else:
                        self._send(body)
                elif self.path == "/slow":
                    self.send_response(200)
                    self.send_header("Content-Length", "1000")
                    self.end_headers()
                    for _ in range(1000):
                        self.wfile.write(b"x")
                        self.wfile.flush()
                        time.sleep(0.2)
                elif self.path == "/to-metrics":
                    self.send_response(302)
                    self.send_header("Location", f"http://127.0.0.2:{server.port}/metrics")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path.split("?")[0] == "/hold":
                    with server.lock:
                        server.in_flight += 1
                        server.most_in_flight = max(server.most_in_flight, server.in_flight)
                    time.sleep(0.5)
                    with server.lock:
                        server.in_flight -= 1
                    self._send(rss_feed(feed_entry(1)).encode())
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def _send(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "application/rss+xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, client_address: None  # type: ignore[method-assign]  # resets by the client are expected
        self.port = self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("0x7f000001", "loopback"),
        ("2130706433", "loopback"),
        ("localhost", "loopback"),
        ("[::1]", "loopback"),
        ("[::ffff:127.0.0.1]", "loopback"),
        ("169.254.169.254", "link-local"),
        ("10.0.0.1", "private"),
        ("192.168.1.1", "private"),
        ("224.0.0.1", "multicast"),
        ("0.0.0.0", "unspecified"),
    ],
)
def test_special_addresses_are_refused_before_connecting(server: Server, host: str, kind: str) -> None:
    with pytest.raises(FetchRefused, match=f"a {kind} address: refused"):
        get(server.url("/feed", host), {}, FetchPolicy())
    assert server.hosts == []  # nothing reached the server


def test_allowed_networks_open_them_and_the_checked_address_is_the_one_connected(server: Server) -> None:
    """A name that resolves to an allowed address is fetched from that very address, with the
    URL's host in the Host header (the resolver is asked once; a later answer cannot swap it)."""
    answers = iter([["127.0.0.1"], ["10.9.9.9"]])
    policy = FetchPolicy(allow_networks=ONLY_127_0_0_1, resolve=lambda host, port: next(answers))
    response = get(server.url("/feed", "feeds.example.org"), {}, policy)
    assert response.status == 200 and b"<rss" in response.content
    assert server.hosts == [f"feeds.example.org:{server.port}"]


def test_a_redirect_is_checked_like_the_first_url(server: Server) -> None:
    with pytest.raises(FetchRefused, match=r"127.0.0.2 resolves to 127.0.0.2, a loopback address"):
        get(server.url("/to-metrics"), {}, FetchPolicy(allow_networks=ONLY_127_0_0_1))
    assert len(server.hosts) == 1  # the redirect was not followed to /metrics


@pytest.mark.parametrize("path", ["/big", "/big-chunked"])
def test_a_feed_over_the_size_cap_is_refused(server: Server, path: str) -> None:
    with pytest.raises(FetchRefused, match="over the limit of 1048576"):
        get(server.url(path), {}, FetchPolicy(allow_networks=ONLY_127_0_0_1, max_bytes=1024 * 1024))


def test_one_deadline_bounds_a_slow_feed(server: Server) -> None:
    """A byte every 0.2 s never trips a per-read timeout; the whole fetch's deadline stops it."""
    with pytest.raises(FetchRefused, match="not fetched within 1 s"):
        get(server.url("/slow"), {}, FetchPolicy(allow_networks=ONLY_127_0_0_1, deadline=1.0))


def test_feeds_are_polled_concurrently_within_the_bound(services: Services, server: Server) -> None:
    with session_scope(services.sessions) as s:
        for n in range(6):
            s.add(FeedSource(url=server.url(f"/hold?n={n}"), specialties=["cardiology"]))
    results = poll_feeds(services.sessions, services.clock(), FetchPolicy(allow_networks=ONLY_127_0_0_1, concurrency=3))
    assert [r.status for r in results] == [FeedStatus.OK] * 6
    assert server.most_in_flight == 3
