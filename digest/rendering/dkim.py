"""DKIM signing with dkimpy: over-signed identity, reply and unsubscribe headers; From alignment.

Mailbox providers require that DKIM covers ``List-Unsubscribe`` and ``List-Unsubscribe-Post`` for
one-click unsubscribe to be honoured. Each header that matters is listed in ``h=`` once more than
the message carries it (RFC 6376 5.4.2 and 8.15, "over-signing"), absent ones (Reply-To, Cc, Sender)
included: a relay that prepends a second Subject, From, List-Unsubscribe or Reply-To then breaks
the signature instead of getting its header shown under our domain's signature.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import dkim
from publicsuffixlist import PublicSuffixList

from digest.rendering.headers import prepend_field

OVERSIGNED: tuple[bytes, ...] = (
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"cc",
    b"sender",
    b"list-id",
    b"feedback-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"mime-version",
    b"content-type",
)


def signed_headers(raw: bytes) -> list[bytes]:
    """``h=`` for ``raw``: each header of ``OVERSIGNED`` as many times as it occurs, plus one."""
    head = raw.split(b"\r\n\r\n", 1)[0]
    counts = dict.fromkeys(OVERSIGNED, 1)
    for line in head.split(b"\r\n"):
        if line[:1] not in (b" ", b"\t"):
            name = line.split(b":", 1)[0].strip().lower()
            if name in counts:
                counts[name] += 1
    return [name for name, count in counts.items() for _ in range(count)]


@lru_cache(maxsize=1)
def _suffixes() -> PublicSuffixList:
    return PublicSuffixList()  # the list shipped with the package: no network


def organizational_domain(domain: str) -> str:
    """DMARC's organisational domain (RFC 7489 3.2): the public suffix plus one label."""
    domain = domain.lower().rstrip(".")
    return _suffixes().privatesuffix(domain) or domain


def check_alignment(dkim_domain: str, from_address: str) -> None:
    """Refuse a DKIM domain that DMARC's relaxed alignment would not match with the From domain:
    such a signature verifies but does nothing for DMARC, silently."""
    from_domain = from_address.rpartition("@")[2]
    if organizational_domain(dkim_domain) != organizational_domain(from_domain):
        raise ValueError(
            f"DIGEST_DKIM_DOMAIN {dkim_domain!r} does not align with the From domain {from_domain!r} "
            f"(organisational domains {organizational_domain(dkim_domain)!r} and "
            f"{organizational_domain(from_domain)!r}): "
            "DMARC would fail; sign with the From domain or a domain under the same organisational domain"
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
            include_headers=signed_headers(raw),
            canonicalize=(b"relaxed", b"relaxed"),
        )
        return prepend_field(bytes(signature), raw)
