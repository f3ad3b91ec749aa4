"""HMACs from a keyed state built once per key and copied per message: the send path signs a few
short values per message (Message-ID, the mailto unsubscribe address, the unsubscribe and
preferences tokens), and setting the key up is half the cost of a short MAC."""

from __future__ import annotations

import functools
import hashlib
import hmac
from collections.abc import Callable
from typing import Any

DigestMod = Callable[..., Any]


def mac(key: bytes, message: bytes, digestmod: DigestMod = hashlib.sha256) -> hmac.HMAC:
    """``hmac.new(key, message, digestmod)``, from a copy of the keyed state."""
    state = _keyed(key, digestmod).copy()
    state.update(message)
    return state


def sha256_mac(key: str, message: str) -> hmac.HMAC:
    """HMAC-SHA256 of a text under a text key (both UTF-8)."""
    return mac(key.encode(), message.encode())


@functools.lru_cache(maxsize=32)
def _keyed(key: bytes, digestmod: DigestMod) -> hmac.HMAC:
    return hmac.new(key, digestmod=digestmod)
