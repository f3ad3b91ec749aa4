"""The MAC from a copied keyed state is the plain HMAC, for every key, however often reused."""

from __future__ import annotations

import hashlib
import hmac

from digest.macs import mac, sha256_mac


def test_copied_keyed_state_gives_the_plain_hmac() -> None:
    for _ in range(3):  # later rounds come from the cached keyed states
        for key in ("k" * 32, "another secret", "é-ünïcode", ""):
            for message in ("msgid:1:2", "mailto-unsubscribe:99", ""):
                assert (
                    sha256_mac(key, message).digest()
                    == hmac.new(key.encode(), message.encode(), hashlib.sha256).digest()
                )


def test_bytes_keys_and_other_digests_give_the_plain_hmac() -> None:
    for _ in range(2):
        for digestmod in (hashlib.sha1, hashlib.sha256, hashlib.sha512):
            for key in (b"\x00" * 20, b"derived key bytes", b""):
                assert (
                    mac(key, b"eyJ0b2tlbiI6MX0", digestmod).digest()
                    == hmac.new(key, b"eyJ0b2tlbiI6MX0", digestmod).digest()
                )
