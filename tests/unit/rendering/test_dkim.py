"""DKIM configuration: all three variables or none, a key that cannot sign or a domain that does not
align with From fails at start-up; the signature over-signs the headers that matter."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.config import Settings
from digest.rendering.dkim import DKIMSigner, check_alignment, signed_headers
from digest.rendering.headers import DotFree
from digest.wiring import ConfigError, make_signer

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
PEM = KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
DNS_RECORD = b"v=DKIM1; k=rsa; p=" + base64.b64encode(
    KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
)
MESSAGE = (
    b"From: Digest <digest@news.d.org>\r\nTo: a@example.org\r\nSubject: Your digest\r\n"
    b"Date: Fri, 27 Nov 2026 12:00:00 +0000\r\nMessage-ID: <m.1@news.d.org>\r\n"
    b"List-Unsubscribe: <https://d.org/u/t>\r\nList-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"
    b"MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody\r\n"
)


def dns(name: bytes, timeout: int = 5) -> bytes:
    return DNS_RECORD if name == b"s._domainkey.d.org." else b""


def _settings(tmp_path: Path, **dkim: object) -> Settings:
    return Settings(
        var_dir=tmp_path, database_url="sqlite://", secret_key="k", from_="Digest <digest@news.d.org>", **dkim
    )  # type: ignore[arg-type]


def test_no_dkim_variables_means_no_signing(tmp_path: Path) -> None:
    assert make_signer(_settings(tmp_path)) is None


def test_half_configured_dkim_names_the_missing_variables(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DIGEST_DKIM_SELECTOR, DIGEST_DKIM_KEY_FILE"):
        make_signer(_settings(tmp_path, dkim_domain="news.example.org"))


def test_unreadable_or_invalid_keys_fail_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read DIGEST_DKIM_KEY_FILE"):
        make_signer(_settings(tmp_path, dkim_domain="d.org", dkim_selector="s", dkim_key_file=tmp_path / "missing.pem"))
    junk = tmp_path / "junk.pem"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="cannot sign"):
        make_signer(_settings(tmp_path, dkim_domain="d.org", dkim_selector="s", dkim_key_file=junk))


def test_a_dkim_domain_that_does_not_align_with_from_refuses_to_start(tmp_path: Path) -> None:
    key = tmp_path / "k.pem"
    key.write_bytes(PEM)
    with pytest.raises(ConfigError, match=r"does not align with the From domain 'news.d.org'"):
        make_signer(_settings(tmp_path, dkim_domain="other.org", dkim_selector="s", dkim_key_file=key))
    assert make_signer(_settings(tmp_path, dkim_domain="mail.d.org", dkim_selector="s", dkim_key_file=key))


@pytest.mark.parametrize(
    ("dkim_domain", "from_address", "aligned"),
    [
        ("d.org", "x@news.d.org", True),
        ("news.d.org", "x@d.org", True),
        ("a.example.co.uk", "x@b.example.co.uk", True),
        ("example.co.uk", "x@other.co.uk", False),
        ("d.org", "x@d.org.evil.net", False),
    ],
)
def test_relaxed_alignment_compares_organisational_domains(dkim_domain: str, from_address: str, aligned: bool) -> None:
    if aligned:
        check_alignment(dkim_domain, from_address)
    else:
        with pytest.raises(ValueError, match="does not align"):
            check_alignment(dkim_domain, from_address)


def test_h_lists_each_header_once_more_than_present_absent_ones_included() -> None:
    h = signed_headers(MESSAGE)
    for name in (b"from", b"subject", b"list-unsubscribe", b"to", b"date", b"message-id", b"mime-version"):
        assert h.count(name) == 2, name
    for name in (b"reply-to", b"cc", b"sender", b"list-id"):
        assert h.count(name) == 1, name


@pytest.mark.parametrize(
    "added",
    [
        b"Subject: Urgent: reset your password",
        b"From: Security <security@evil.example>",
        b"List-Unsubscribe: <https://evil.example/u>",
        b"Reply-To: attacker@evil.example",
        b"Cc: victim@example.net",
        b"Sender: x@evil.example",
    ],
)
def test_a_prepended_header_breaks_the_signature(added: bytes) -> None:
    signed = DKIMSigner("d.org", "s", PEM)(MESSAGE)
    assert dkim.verify(signed, dnsfunc=dns)
    signature, _, rest = signed.partition(b"\r\nFrom:")
    assert not dkim.verify(signature + b"\r\n" + added + b"\r\nFrom:" + rest, dnsfunc=dns)
    assert not dkim.verify(added + b"\r\n" + signed, dnsfunc=dns)


def test_a_signed_dot_free_message_stays_dot_free_and_verifies() -> None:
    """The SMTP transport skips dot-stuffing for ``DotFree`` bytes: the signature keeps the mark
    because none of its lines starts with a dot; other bytes stay unmarked."""
    signed = DKIMSigner("d.org", "s", PEM)(DotFree(MESSAGE))
    assert isinstance(signed, DotFree) and b"\r\n." not in signed and dkim.verify(signed, dnsfunc=dns)
    assert not isinstance(DKIMSigner("d.org", "s", PEM)(MESSAGE), DotFree)
