"""DKIM signing with dkimpy: the signature covers the identity and the unsubscribe headers.

Mailbox providers require that DKIM covers ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` for
one-click unsubscribe to be honoured, so both are always in ``h=``.
"""

from __future__ import annotations

from pathlib import Path

import dkim

SIGNED_HEADERS: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


class DKIMSigner:
    """A ``bytes -> bytes`` callable for ``MessageComposer(sign=...)``: prepends a DKIM-Signature."""

    def __init__(self, domain: str, selector: str, private_key: bytes):
        self.domain = domain.encode("ascii")
        self.selector = selector.encode("ascii")
        self.private_key = private_key
        # Fail at start-up, not on the first send, when the key is not a usable private key.
        try:
            self(b"From: a@example.org\r\nSubject: key check\r\n\r\nbody\r\n")
        except Exception as exc:
            raise ValueError(f"DKIM key for selector {selector!r} at {domain!r} cannot sign: {exc}") from exc

    @classmethod
    def from_file(cls, domain: str, selector: str, key_file: Path) -> DKIMSigner:
        try:
            key = key_file.read_bytes()
        except OSError as exc:
            raise ValueError(f"cannot read DIGEST_DKIM_KEY_FILE {str(key_file)!r}: {exc.strerror}") from exc
        return cls(domain, selector, key)

    def __call__(self, raw: bytes) -> bytes:
        signature = dkim.sign(
            raw,
            self.selector,
            self.domain,
            self.private_key,
            include_headers=list(SIGNED_HEADERS),
            canonicalize=(b"relaxed", b"relaxed"),
        )
        return bytes(signature) + raw
