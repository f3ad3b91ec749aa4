"""HMAC-SHA256 keyed once per secret: the send path signs a few values per message (Message-ID,
the mailto unsubscribe address), and setting the key up is half the cost of a short MAC."""

from __future__ import annotations

import functools
import hashlib
import hmac


def sha256_mac(key: str, message: str) -> hmac.HMAC:
    """``hmac.new(key, message, sha256)``, from a copy of the keyed state."""
    mac = _keyed(key).copy()
    mac.update(message.encode())
    return mac


@functools.lru_cache(maxsize=16)
def _keyed(key: str) -> hmac.HMAC:
    return hmac.new(key.encode(), digestmod=hashlib.sha256)
