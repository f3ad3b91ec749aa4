"""The MAC from a copied keyed state is the plain HMAC, for every key, however often reused."""

from __future__ import annotations

import hashlib
import hmac

from digest.macs import sha256_mac


def test_copied_keyed_state_gives_the_plain_hmac() -> None:
    for _ in range(3):  # later rounds come from the cached keyed states
        for key in ("k" * 32, "another secret", "é-ünïcode", ""):
            for message in ("msgid:1:2", "mailto-unsubscribe:99", ""):
                assert sha256_mac(key, message).digest() == hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
