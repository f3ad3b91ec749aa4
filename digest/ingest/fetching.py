"""How feeds are fetched: an allow/deny policy on resolved addresses, redirects re-checked, the
connection made to the address that was checked, a size cap and one deadline for the whole fetch.

Issue 17's attacks: a feed URL of 127.0.0.1, 0x7f000001 or 169.254.169.254 (cloud metadata), a
redirect to ``/metrics`` on loopback, a 300 MB feed and a feed served at 1 byte/s. Here:

- the host is resolved once (``getaddrinfo``: ``0x7f000001`` is 127.0.0.1 too); if any address is
  loopback, private, link-local, multicast, reserved or unspecified (IPv4-mapped IPv6 included),
  the fetch is refused, unless it lies in ``DIGEST_FEED_ALLOW_NETWORKS``;
- the connection goes to that checked address (the Host header and TLS name stay the URL's), so a
  second DNS answer cannot swap in another one;
- redirects are followed by hand, at most five, each target checked like the first URL;
- the body is read in pieces, decoded size counted, refused past ``DIGEST_FEED_MAX_BYTES``;
- ``DIGEST_FEED_DEADLINE_SECONDS`` bounds the whole fetch, redirects and slow reads included: the
  socket's timeout is set to what is left before every read.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urljoin, urlsplit

import urllib3
from urllib3.exceptions import HTTPError as Urllib3Error

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024


class FetchRefused(Exception):
    """The fetch broke the policy or failed; the message says which rule or what went wrong."""


@dataclass(frozen=True)
class Response:
    status: int
    reason: str
    headers: dict[str, str]
    content: bytes


def _resolve(host: str, port: int) -> list[str]:
    return [str(info[4][0]) for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)]


@dataclass(frozen=True)
class FetchPolicy:
    allow_networks: tuple[Network, ...] = ()
    max_bytes: int = 10 * 1024 * 1024
    deadline: float = 30.0
    max_redirects: int = 5
    concurrency: int = 4
    resolve: Callable[[str, int], list[str]] = field(default=_resolve, repr=False)

    @classmethod
    def from_settings(cls, settings: Any) -> FetchPolicy:
        return cls(
            allow_networks=tuple(ipaddress.ip_network(n, strict=False) for n in settings.feed_allow_networks),
            max_bytes=settings.feed_max_bytes,
            deadline=settings.feed_deadline_seconds,
            concurrency=settings.feed_concurrency,
        )

    def refusal(self, address: IPAddress) -> str | None:
        """Why ``address`` may not be fetched from, or None when it may."""
        if any(address in net for net in self.allow_networks):
            return None
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            return self.refusal(address.ipv4_mapped)
        for kind in ("unspecified", "loopback", "link_local", "multicast", "reserved", "private"):
            if getattr(address, f"is_{kind}"):
                return kind.replace("_", "-")
        return None

    def checked_address(self, url: str) -> tuple[str, int, str]:
        """(scheme, port, address to connect to) for ``url``, or FetchRefused."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise FetchRefused(f"only http and https URLs are fetched, not {url!r}")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
            addresses = self.resolve(parts.hostname, port)
        except (OSError, ValueError) as exc:
            raise FetchRefused(f"cannot resolve {parts.hostname}: {exc}") from None
        if not addresses:
            raise FetchRefused(f"{parts.hostname} has no address")
        for raw in addresses:
            address = ipaddress.ip_address(raw.split("%", 1)[0])
            why = self.refusal(address)
            if why is not None:
                raise FetchRefused(
                    f"{parts.hostname} resolves to {address}, a {why} address: refused "
                    "(allow it with DIGEST_FEED_ALLOW_NETWORKS)"
                )
        return parts.scheme, port, addresses[0].split("%", 1)[0]


def get(url: str, headers: dict[str, str], policy: FetchPolicy) -> Response:
    """GET ``url`` under ``policy``, following redirects by hand."""
    deadline = time.monotonic() + policy.deadline
    for _ in range(policy.max_redirects + 1):
        response = _get_once(url, headers, policy, deadline)
        location = response.headers.get("location")
        if response.status not in REDIRECTS or not location:
            return response
        url = urljoin(url, location)
    raise FetchRefused(f"more than {policy.max_redirects} redirects")


def _remaining(deadline: float, policy: FetchPolicy) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise FetchRefused(f"not fetched within {policy.deadline:g} s (DIGEST_FEED_DEADLINE_SECONDS)")
    return left


def _get_once(url: str, headers: dict[str, str], policy: FetchPolicy, deadline: float) -> Response:
    scheme, port, address = policy.checked_address(url)
    parts = urlsplit(url)
    host = parts.hostname or ""
    left = _remaining(deadline, policy)
    timeout = urllib3.Timeout(connect=min(left, 10.0), read=left)
    pool: urllib3.HTTPConnectionPool
    if scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            address, port, timeout=timeout, retries=False, server_hostname=host, assert_hostname=host
        )
    else:
        pool = urllib3.HTTPConnectionPool(address, port, timeout=timeout, retries=False)
    default_port = port == (443 if scheme == "https" else 80)
    host_header = host if default_port else f"{host}:{port}"
    if ":" in host and not default_port:
        host_header = f"[{host}]:{port}"
    path = parts.path or "/"
    if parts.query:
        path += f"?{parts.query}"
    try:
        raw = pool.urlopen("GET", path, headers={**headers, "Host": host_header}, redirect=False, preload_content=False)
        try:
            declared = raw.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > policy.max_bytes:
                raise FetchRefused(f"{declared} bytes, over the limit of {policy.max_bytes} (DIGEST_FEED_MAX_BYTES)")
            content = _read(raw, policy, deadline) if raw.status == 200 else b""
        finally:
            raw.release_conn()
    except Urllib3Error as exc:
        if time.monotonic() >= deadline:
            raise FetchRefused(f"not fetched within {policy.deadline:g} s (DIGEST_FEED_DEADLINE_SECONDS)") from None
        raise FetchRefused(f"cannot fetch: {exc}") from None
    finally:
        pool.close()
    return Response(raw.status, raw.reason or "", {k.lower(): v for k, v in raw.headers.items()}, content)


def _read(raw: Any, policy: FetchPolicy, deadline: float) -> bytes:
    pieces: list[bytes] = []
    size = 0
    while True:
        left = _remaining(deadline, policy)
        sock = getattr(getattr(raw, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(left)  # a slow server cannot stretch the fetch past the deadline
        piece = raw.read1(CHUNK)
        if not piece:
            return b"".join(pieces)
        size += len(piece)
        if size > policy.max_bytes:
            raise FetchRefused(f"over the limit of {policy.max_bytes} bytes (DIGEST_FEED_MAX_BYTES)")
        pieces.append(piece)
