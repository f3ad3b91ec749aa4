"""Headers every digest carries, and the MIME assembly that makes header injection impossible.

Every user-supplied value that reaches a header (names, subjects, titles) goes through
``one_line``; the ``email`` package's policy then refuses any CR or LF that slipped through.
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import re
import secrets
from functools import lru_cache
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from datetime import datetime

from digest.rendering.message import OutgoingMessage


def one_line(value: str, limit: int = 300) -> str:
    """Collapse all whitespace (CR, LF, tabs, Unicode line separators) to single spaces."""
    return " ".join(value.split())[:limit]


def make_message_id(issue_id: int, subscriber_id: int, domain: str, secret: str) -> str:
    """Stable per (issue, subscriber): a resend after a lost commit carries the same Message-ID,
    so receiving systems that de-duplicate by it show one message."""
    mac = hmac.new(secret.encode(), f"msgid:{issue_id}:{subscriber_id}".encode(), hashlib.sha256).hexdigest()[:12]
    return f"<digest.{issue_id}.{subscriber_id}.{mac}@{domain}>"


def list_id(list_name: str, domain: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", list_name.lower()).strip("-") or "digest"
    return f"{one_line(list_name)} <{slug}.{domain}>"


def list_unsubscribe(https_url: str, mailto_address: str) -> tuple[tuple[str, str], ...]:
    """RFC 2369 + RFC 8058 headers: the HTTPS one-click URL first, then the mailto fallback."""
    return (
        ("List-Unsubscribe", f"<{https_url}>, <mailto:{mailto_address}?subject=unsubscribe>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


# Long header lines are allowed up to RFC 5322's 998 characters: folding a long URL token would make
# the email package fall back to RFC 2047 encoded-words, which breaks List-Unsubscribe.
WIRE_POLICY = SMTP.clone(max_line_length=998)


def _header_values(msg: OutgoingMessage, date: datetime) -> list[tuple[str, str | Address]]:
    from_name, from_addr = parseaddr(msg.from_header)
    return [
        ("From", formataddr((one_line(from_name), from_addr))),
        ("To", Address(display_name=one_line(msg.to_name), addr_spec=msg.to_email)),
        ("Subject", one_line(msg.subject, 998)),
        ("Date", format_datetime(date)),
        ("Message-ID", msg.message_id),
        *((name, one_line(value, 2000)) for name, value in msg.headers),
    ]


def _headers(msg: OutgoingMessage, date: datetime) -> EmailMessage:
    mime = EmailMessage(policy=WIRE_POLICY)
    for name, value in _header_values(msg, date):
        mime[name] = value
    return mime


def _fold_once(name: str, value: str | Address) -> bytes:
    """One header line exactly as the generator writes it (parsed and folded by the policy)."""
    return WIRE_POLICY.fold_binary(name, WIRE_POLICY.header_store_parse(name, value)[1])


# From, Subject, Date, List-Id and List-Unsubscribe-Post repeat across a chunk; parsing them was
# most of the header cost, so their folded lines are cached (string values only).
_REPEATED = frozenset({"From", "Subject", "Date", "List-Id", "List-Unsubscribe-Post", "MIME-Version"})
_folded = lru_cache(maxsize=1024)(_fold_once)


def build_mime(msg: OutgoingMessage, date: datetime) -> EmailMessage:
    """multipart/alternative with the plain-text part first and the HTML part last (preferred)."""
    mime = _headers(msg, date)
    mime.set_content(msg.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    mime.add_alternative(msg.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return mime


def mime_bytes(msg: OutgoingMessage, date: datetime) -> bytes:
    """The wire bytes of ``build_mime``'s message, assembled directly: what the send path uses.

    The headers still go through the ``email`` package (folding, encoded words, no CR/LF
    injection); the two quoted-printable bodies are encoded by ``binascii`` (C) and joined with a
    boundary that quoted-printable text cannot contain (``=_`` is not a valid QP escape). The
    generator's pure-Python encoding and line writing were the largest per-message cost of the
    send path in the benchmark profile. Parsed, the result equals ``build_mime``'s.
    """
    boundary = f"=_{secrets.token_hex(16)}"
    parts = [
        _folded(name, value) if isinstance(value, str) and name in _REPEATED else _fold_once(name, value)
        for name, value in _header_values(msg, date)
    ]
    parts += [_folded("MIME-Version", "1.0"), _fold_once("Content-Type", f'multipart/alternative; boundary="{boundary}"'), b"\r\n"]
    for subtype, body in (("plain", msg.text), ("html", msg.html)):
        parts.append(
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
        )
        parts.append(_quoted_printable(body) + b"\r\n")  # this CRLF belongs to the next delimiter
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


def _quoted_printable(text: str) -> bytes:
    """UTF-8 quoted-printable with CRLF line ends and a final line break."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    return binascii.b2a_qp(text.encode("utf-8"), istext=True).replace(b"\n", b"\r\n")
