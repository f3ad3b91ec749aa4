"""Variant bodies shared by every worker process through Redis: each variant rendered once per send.

Rendering a variant (Jinja2, then premailer) is the largest cost a process pays once per variant
(about 8 ms), and each process keeps its bodies in its own memory. With several pool processes,
and worker hosts beside them, every process met nearly every variant and rendered it again: one
process's quarter of a 100k send rendered 180 of the 181 variants it met, and the 4 processes
together spent about an eighth of their CPU on it.
The first process to render a variant now leaves the body here, cut at its recipient markers
(``MarkedText``'s pieces and field names, so no marker or nonce crosses processes), and the others
read it back.

What is stored decides what readers get, so a body is read back only when it is

- for the same renderer: the key starts with ``EmailRenderer.fingerprint`` (templates, catalogues,
  the version, the list's settings and the link-signing key), so a deploy with new templates or
  another list never reads an old body;
- written by a holder of the secret key: each value carries an HMAC over its bytes under a key
  derived from DIGEST_SECRET_KEY. Whoever can write to Redis can queue tasks (ids only), not put
  words in an email.

Redis is an optimisation here, never a condition of sending: a failed or slow call (0.5 s at most)
makes this process render for itself and leave Redis alone for ``retry_seconds``, with one warning.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
import zlib
from collections.abc import Callable
from typing import Protocol

import redis

from digest.macs import mac, sha256_mac
from digest.rendering.marked import MarkedText
from digest.rendering.personalisation import VariantBody

log = logging.getLogger(__name__)

FORMAT = 1  # of the stored value; part of the key, so a new format never reads an old value
TTL_SECONDS = 6 * 3600  # a variant belongs to one issue's send, which lasts minutes to hours
RETRY_SECONDS = 30.0
TIMEOUT_SECONDS = 0.5
_MAC_BYTES = 32


class BodyStore(Protocol):
    """Rendered variant bodies by variant key, shared beyond this process."""

    def get(self, key: str) -> VariantBody | None:
        """The body stored under ``key``, or None (absent, refused, or the store unreachable)."""

    def put(self, key: str, body: VariantBody) -> None:
        """Keep ``body`` for the other processes (best effort)."""


class RedisBodyStore:
    """Bodies in Redis under ``digest:body:<format>:<fingerprint>:<variant key>``, zlib-compressed
    JSON behind an HMAC-SHA256, kept ``ttl`` seconds."""

    def __init__(
        self,
        client: redis.Redis,
        fingerprint: str,
        secret_key: str,
        *,
        ttl: int = TTL_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.client = client
        self.prefix = f"digest:body:{FORMAT}:{fingerprint}:"
        self._mac_key = sha256_mac(secret_key, "digest.shared-variant-bodies").digest()
        self.ttl = ttl
        self.retry_seconds = retry_seconds
        self.clock = clock
        self._quiet_until = 0.0
        self.hits = 0  # bodies read back (tests)
        self.refused = 0  # values present but not accepted (tests)

    @classmethod
    def from_url(cls, url: str, fingerprint: str, secret_key: str) -> RedisBodyStore:
        client = redis.Redis.from_url(url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS)
        return cls(client, fingerprint, secret_key)

    def get(self, key: str) -> VariantBody | None:
        if self._quiet():
            return None
        try:
            value = self.client.get(self.prefix + key)
        except redis.RedisError as exc:
            self._failed("read", exc)
            return None
        if value is None:
            return None
        assert isinstance(value, bytes)
        body = self._decode(value)
        if body is None:
            self.refused += 1
            log.warning("shared variant body %s refused (bad signature or unreadable); rendering it here", key)
            return None
        self.hits += 1
        return body

    def put(self, key: str, body: VariantBody) -> None:
        if self._quiet():
            return
        try:
            self.client.set(self.prefix + key, self._encode(body), ex=self.ttl)
        except redis.RedisError as exc:
            self._failed("write", exc)

    def _quiet(self) -> bool:
        return self.clock() < self._quiet_until

    def _failed(self, what: str, exc: Exception) -> None:
        self._quiet_until = self.clock() + self.retry_seconds
        log.warning(
            "shared variant bodies: could not %s Redis (%s); this process renders its own for %.0f s",
            what,
            exc,
            self.retry_seconds,
        )

    def _sign(self, data: bytes) -> bytes:
        return mac(self._mac_key, data).digest()

    def _encode(self, body: VariantBody) -> bytes:
        doc = {
            "subject": body.subject,
            "preheader": body.preheader,
            "html": [body.html.pieces, body.html.fields],
            "text": [body.text.pieces, body.text.fields],
        }
        data = zlib.compress(json.dumps(doc, separators=(",", ":")).encode(), 6)
        return self._sign(data) + data

    def _decode(self, value: bytes) -> VariantBody | None:
        """The body, if this secret key signed ``value`` (only this module's ``_encode`` wrote it)."""
        given, data = value[:_MAC_BYTES], value[_MAC_BYTES:]
        if not hmac.compare_digest(given, self._sign(data)):
            return None
        doc = json.loads(zlib.decompress(data))
        return VariantBody(
            subject=doc["subject"],
            preheader=doc["preheader"],
            html=MarkedText.from_parts(*map(tuple, doc["html"])),
            text=MarkedText.from_parts(*map(tuple, doc["text"])),
        )
