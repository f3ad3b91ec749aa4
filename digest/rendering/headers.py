"""Headers every digest carries, and the MIME assembly that makes header injection impossible.

Every user-supplied value that reaches a header (names, subjects, titles) goes through
``one_line``; the ``email`` package's policy then refuses any CR or LF that slipped through.
"""

from __future__ import annotations

import binascii
import re
import secrets
from datetime import datetime
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, parseaddr
from functools import lru_cache
from typing import cast

from digest.macs import sha256_mac
from digest.rendering.message import OutgoingMessage


def one_line(value: str, limit: int = 300) -> str:
    """Collapse all whitespace (CR, LF, tabs, Unicode line separators) to single spaces."""
    return " ".join(value.split())[:limit]


def make_message_id(issue_id: int, subscriber_id: int, domain: str, secret: str) -> str:
    """Stable per (issue, subscriber): a resend after a lost commit carries the same Message-ID,
    so receiving systems that de-duplicate by it show one message."""
    mac = sha256_mac(secret, f"msgid:{issue_id}:{subscriber_id}").hexdigest()[:12]
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


# Subject, List-Id and List-Unsubscribe-Post repeat across a chunk; parsing them was most of the
# header cost, so their folded lines are cached (as are From and Date, below).
_REPEATED = frozenset({"Subject", "List-Id", "List-Unsubscribe-Post", "MIME-Version"})
_folded = lru_cache(maxsize=1024)(_fold_once)


def build_mime(msg: OutgoingMessage, date: datetime) -> EmailMessage:
    """multipart/alternative with the plain-text part first and the HTML part last (preferred)."""
    mime = _headers(msg, date)
    mime.set_content(msg.text, subtype="plain", charset="utf-8", cte="quoted-printable")
    mime.add_alternative(msg.html, subtype="html", charset="utf-8", cte="quoted-printable")
    return mime


def mime_bytes(msg: OutgoingMessage, date: datetime, bodies: tuple[bytes, bytes] | None = None) -> bytes:
    """The wire bytes of ``build_mime``'s message, assembled directly: what the send path uses.

    The headers go through the ``email`` package (folding, encoded words, no CR/LF injection),
    except the per-recipient ones whose values are plain ASCII with nothing to fold or encode
    (``_plain_line``: the same bytes, tested against the policy); the lines that repeat across
    messages (From, Subject, Date, List-Id, ...) are folded once and cached. The two
    quoted-printable bodies are encoded by ``binascii`` (C), or come encoded already (``bodies``:
    text, html, from ``MarkedText``), and are joined with a boundary that quoted-printable text
    cannot contain (``=_`` is not a valid QP escape). Parsed, the result equals ``build_mime``'s.
    No line of the result starts with a dot: header lines start with a name or, folded, with a
    space, and the bodies come from ``quoted_printable_piece``.
    """
    boundary = f"=_{secrets.token_hex(16)}"
    parts = [
        _from_line(msg.from_header),
        _to_line(one_line(msg.to_name), msg.to_email),
        _folded("Subject", one_line(msg.subject, 998)),
        _date_line(date),
        _header_line("Message-ID", msg.message_id),
        *(_header_line(name, one_line(value, 2000)) for name, value in msg.headers),
        _folded("MIME-Version", "1.0"),
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode(),
    ]
    text, html = bodies or (_quoted_printable(msg.text), _quoted_printable(msg.html))
    for subtype, body in (("plain", text), ("html", html)):
        parts.append(
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
        )
        parts += (body, b"\r\n")  # this CRLF belongs to the next delimiter
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts)


@lru_cache(maxsize=64)
def _from_line(from_header: str) -> bytes:
    from_name, from_addr = parseaddr(from_header)
    return _fold_once("From", formataddr((one_line(from_name), from_addr)))


@lru_cache(maxsize=64)
def _date_line(date: datetime) -> bytes:
    return _fold_once("Date", format_datetime(date))


def _to_line(name: str, email: str) -> bytes:
    direct = _plain_address_line("To", name, email)
    return direct if direct is not None else _fold_once("To", Address(display_name=name, addr_spec=email))


def _header_line(name: str, value: str) -> bytes:
    if name in _REPEATED:
        return _folded(name, value)
    line = _plain_line(name, value)
    return line if line is not None else _fold_once(name, value)


# Printable ASCII words, single-spaced (and, checked apart, no "=?" that could start an encoded word).
_PLAIN_VALUE = re.compile(r"[\x21-\x7e]+(?: [\x21-\x7e]+)*")
# RFC 5322 atext words (a display name needing no quotes) and a dot-atom address.
_ATOM_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: [A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_DOT_ATOM_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)
_STRUCTURED = frozenset(cast(HeaderRegistry, WIRE_POLICY.header_factory).registry)
_MESSAGE_ID = re.compile(
    r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>"
)
_PLAIN_LIMIT = 900  # well inside the policy's 998, so nothing would be folded


def is_plain_address(addr: str) -> bool:
    """A dot-atom address: nothing in it to quote or encode, in a header or an SMTP command."""
    return _DOT_ATOM_ADDRESS.fullmatch(addr) is not None


def _plain_line(name: str, value: str) -> bytes | None:
    """``Name: value`` CRLF when the policy would write exactly that, else None: a dot-atom
    Message-ID, or an unstructured header (List-Unsubscribe) of short, single-spaced printable
    ASCII."""
    if name == "Message-ID":
        plain = _MESSAGE_ID.fullmatch(value) is not None
    else:
        plain = name.lower() not in _STRUCTURED and _PLAIN_VALUE.fullmatch(value) is not None and "=?" not in value
    return f"{name}: {value}\r\n".encode("ascii") if plain and len(value) < _PLAIN_LIMIT else None


def _plain_address_line(name: str, display: str, addr: str) -> bytes | None:
    """``To: Name <addr>`` CRLF for an atom-only display name and a dot-atom address, else None."""
    if len(display) + len(addr) > _PLAIN_LIMIT or not is_plain_address(addr):
        return None
    if not display:
        return f"{name}: {addr}\r\n".encode("ascii")
    if _ATOM_PHRASE.fullmatch(display) and "=?" not in display:
        return f"{name}: {display} <{addr}>\r\n".encode("ascii")
    return None


def _quoted_printable(text: str) -> bytes:
    """UTF-8 quoted-printable with CRLF line ends and a final line break."""
    return quoted_printable_piece(text, final=True)


def quoted_printable_piece(text: str, *, final: bool) -> bytes:
    """UTF-8 quoted-printable with CRLF line ends. ``final``: the end of a body, with a final line
    break. Otherwise a piece to be followed by others: unless it ends a line, it ends with a soft
    line break, so that whatever follows starts at column 0 (lines stay within 76 characters).

    A short piece of printable ASCII (a greeting, a token URL: eight per message) encodes as itself
    and the soft break, which is returned without the encoder's passes."""
    if not final and _QP_AS_IS.fullmatch(text):
        return text.encode("ascii") + b"=\r\n"
    return _encode_piece(text, final=final)


# What b2a_qp passes through unchanged and unbroken: printable ASCII but "=", spaces only inside,
# no leading dot, at most 74 characters (with "=" a line stays within 76, the check below).
_QP_AS_IS = re.compile(r"[!-\-/-<>-~](?:[ !-<>-~]{0,72}[!-<>-~])?")


def _encode_piece(text: str, *, final: bool) -> bytes:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if final and not text.endswith("\n"):
        text += "\n"
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True)
    if encoded and not encoded.endswith(b"\n"):
        if len(encoded) - encoded.rfind(b"\n") > _QP_LINE:  # a last line of 76: room for the "="
            encoded = encoded[:-1] + b"=\n" + encoded[-1:]
        encoded += b"=\n"
    return _escape_leading_dots(encoded).replace(b"\n", b"\r\n")


def _escape_leading_dots(encoded: bytes) -> bytes:
    """Quoted-printable ``encoded`` (LF line ends) with a dot that starts a line written ``=2E``
    (RFC 2045 lets any character be encoded): no line of a body then starts with a dot, so SMTP
    sends the message without dot-stuffing it (RFC 5321 4.5.2) and the send path does not scan
    every message for one. A line grown past 76 characters is split by a soft line break, never
    inside an ``=XX`` escape."""
    if not encoded.startswith(b".") and b"\n." not in encoded:
        return encoded
    out: list[bytes] = []
    for line in encoded.split(b"\n"):
        while line.startswith(b"."):
            line = b"=2E" + line[1:]
            if len(line) <= _QP_LINE:
                break
            cut = _QP_LINE - 1  # the first part keeps 75 characters and gets the soft break
            if line[cut - 1 : cut] == b"=":
                cut -= 1
            elif line[cut - 2 : cut - 1] == b"=":
                cut -= 2
            out.append(line[:cut] + b"=")
            line = line[cut:]
        out.append(line)
    return b"\n".join(out)


_QP_LINE = 76  # RFC 2045: encoded lines of at most 76 characters
