"""The one MIME writer: every header and every message the project sends is written here.

Header values are written byte by byte by this module, not by the ``email`` package, so what goes
on the wire does not depend on the Python version (before CVE-2024-6923's fix, 3.11.10 / 3.12.5,
the standard library decoded an ``=?...?=`` encoded word from a value and wrote the CR/LF it
carried back out). The rules, for every value:

- text from outside (names, subjects, titles) is cleaned: control characters (C0 but TAB, DEL,
  C1) and bidirectional overrides (U+202A-E, U+2066-9) are dropped, every run of whitespace
  (CR, LF, U+2028, ...) becomes one space (``clean``);
- ``=?`` in such text is literal: the word is re-encoded by us, so a reader sees the characters
  and no decoder ever expands them (RFC 2047 words are never decoded twice);
- words that are not printable ASCII, or too long to fold, are written as RFC 2047 encoded words
  of at most 75 characters; lines are folded at 78 characters where the value allows it (a long
  URL stays whole, within RFC 5322's 998);
- the written header is checked last: every line after the first starts with a space, no CR or
  LF stands alone, nothing below 0x20 or above 0x7e is left; anything else is ``HeaderRefused``.

No line this module writes starts with a dot: header lines start with a name or, folded, with a
space, and quoted-printable bodies write a leading dot as ``=2E`` (``DotFree`` marks such bytes for
the SMTP transport, the only other place that knows about dots; ``prepend_field`` keeps the mark
on a signed message only while it holds).
"""

from __future__ import annotations

import base64
import binascii
import re
import secrets
from datetime import datetime
from email.utils import format_datetime, parseaddr
from functools import lru_cache

from digest.macs import sha256_mac
from digest.rendering.message import OutgoingMessage


class HeaderRefused(ValueError):
    """A header value that cannot be written safely (it would start another header, or break a limit)."""


class DotFree(bytes):
    """Message bytes in which no line starts with a dot: SMTP sends them without dot-stuffing."""


# Control characters that are not whitespace to Python's str.split, and bidirectional overrides.
_INVISIBLE = re.compile("[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u202a-\u202e\u2066-\u2069]")
SOFT_LIMIT = 78  # RFC 5322 2.1.1: lines SHOULD stay within 78 characters
HARD_LIMIT = 998  # ... and MUST stay within 998
WORD_LIMIT = 75  # RFC 2047 2: an encoded word is at most 75 characters
_PLAIN_WORD = re.compile(r"[\x21-\x7e]{1,60}")
_ATOM = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+")
_DOT_ATOM_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*"
)
_MESSAGE_ID = re.compile(
    r"<[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*>"
)
_TOKEN = re.compile(r"[\x21-\x7e]+")  # a word of a structured value we built (URL, id, date part)
_NAME = re.compile(r"[\x21-\x39\x3b-\x7e]+")  # RFC 5322 ftext


def clean(value: str, limit: int | None = None) -> str:
    """Text from outside, made fit for one line: control and bidi characters dropped, whitespace
    runs (CR, LF, TAB, U+2028, ...) turned into single spaces, cut to ``limit`` characters."""
    text = " ".join(_INVISIBLE.sub("", value).split())
    return text if limit is None else text[:limit].rstrip()


def one_line(value: str, limit: int = 300) -> str:
    """``clean`` with a default limit: what every subject and display name goes through."""
    return clean(value, limit)


def is_plain_address(addr: str) -> bool:
    """A dot-atom address: nothing in it to quote or encode, in a header or an SMTP command."""
    return _DOT_ATOM_ADDRESS.fullmatch(addr) is not None


def make_message_id(issue_id: int, subscriber_id: int, domain: str, secret: str) -> str:
    """Stable per (issue, subscriber): a resend after a lost commit carries the same Message-ID,
    so receiving systems that de-duplicate by it show one message."""
    mac = sha256_mac(secret, f"msgid:{issue_id}:{subscriber_id}").hexdigest()[:12]
    return f"<digest.{issue_id}.{subscriber_id}.{mac}@{domain}>"


def random_message_id(domain: str, prefix: str = "digest") -> str:
    """A fresh Message-ID for a one-off message (confirmation, test send)."""
    return f"<{prefix}.{secrets.token_hex(12)}@{domain}>"


def list_id(list_name: str, domain: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", list_name.lower()).strip("-") or "digest"
    return f"{clean(list_name, 200)} <{slug}.{domain}>"


def list_unsubscribe(https_url: str, mailto_address: str) -> tuple[tuple[str, str], ...]:
    """RFC 2369 + RFC 8058 headers: the HTTPS one-click URL first, then the mailto fallback."""
    return (
        ("List-Unsubscribe", f"<{https_url}>, <mailto:{mailto_address}?subject=unsubscribe>"),
        ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
    )


# ---------------------------------------------------------------------------------------------
# Writing one header


def _encoded_words(text: str, first_room: int) -> list[str]:
    """``text`` as base64 RFC 2047 words, the first fitting in ``first_room`` characters, the others
    in 75, never splitting a character's UTF-8 bytes across two words."""
    words: list[str] = []
    room = max(first_room, 16)
    chunk = bytearray()
    for char in text:
        data = char.encode("utf-8")
        if chunk and 12 + 4 * ((len(chunk) + len(data) + 2) // 3) > room:
            words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
            chunk = bytearray()
            room = WORD_LIMIT
        chunk += data
    if chunk:
        words.append(f"=?utf-8?b?{base64.b64encode(chunk).decode('ascii')}?=")
    return words


def _text_words(text: str) -> list[tuple[bool, str]]:
    """Split cleaned text into runs: (False, word) for a printable ASCII word written as it is,
    (True, run) for a run of words (with the spaces between them) that must be encoded."""
    runs: list[tuple[bool, str]] = []
    for word in text.split(" ") if text else ():
        literal = _PLAIN_WORD.fullmatch(word) is not None and "=?" not in word and "?=" not in word
        if not literal and runs and runs[-1][0]:
            runs[-1] = (True, f"{runs[-1][1]} {word}")
        else:
            runs.append((not literal, word))
    return runs


def _fold(name: str, pieces: list[tuple[bool, str]]) -> bytes:
    """``Name: pieces`` folded before a piece that would pass 78 characters. Encoded pieces are cut
    into words that fit; literal pieces are written whole (a long URL may pass 78, never 998)."""
    lines = [f"{name}:"]
    for encoded, piece in pieces:
        words = _encoded_words(piece, SOFT_LIMIT - len(lines[-1]) - 1) if encoded else [piece]
        for word in words:
            if len(lines[-1]) + 1 + len(word) > SOFT_LIMIT and lines[-1] != f"{name}:":
                lines.append("")
            lines[-1] = f"{lines[-1]} {word}"
    return check_header(name, "\r\n".join(lines) + "\r\n")


def check_header(name: str, written: str) -> bytes:
    """The last word on a header before it is sent: one field, within the limits, ASCII only."""
    if _NAME.fullmatch(name) is None:
        raise HeaderRefused(f"{name!r} is not a header name")
    data = written.encode("ascii", "strict") if written.isascii() else b""
    if not data:
        raise HeaderRefused(f"{name}: non-ASCII characters left in the written header")
    lines = data[:-2].split(b"\r\n") if data.endswith(b"\r\n") else [b"\n"]
    if not lines[0].startswith(name.encode() + b":"):
        raise HeaderRefused(f"{name}: the written header does not start with its name")
    for number, line in enumerate(lines):
        if re.search(rb"[\x00-\x08\x0a-\x1f\x7f]", line):
            raise HeaderRefused(f"{name}: a control character or a lone CR/LF in line {number + 1}")
        if number and line[:1] not in (b" ", b"\t"):
            raise HeaderRefused(f"{name}: line {number + 1} would start a new header")
        if len(line) > HARD_LIMIT:
            raise HeaderRefused(f"{name}: line {number + 1} is {len(line)} characters (limit {HARD_LIMIT})")
    return data


def text_header(name: str, value: str, limit: int = 998) -> bytes:
    """An unstructured header (Subject) from text from outside."""
    return _fold(name, _text_words(clean(value, limit)))


def _phrase(display: str) -> list[tuple[bool, str]]:
    """A display name: atoms as they are, printable ASCII as a quoted string, the rest encoded."""
    display = clean(display, 200)
    if not display:
        return []
    words = display.split(" ")
    if all(_ATOM.fullmatch(w) and "=?" not in w and len(w) <= 60 for w in words):
        return [(False, w) for w in words]
    if len(display) <= 60 and re.fullmatch(r"[\x20-\x7e]+", display) and "=?" not in display:
        return [(False, '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"')]
    return [(True, display)]


def address_header(name: str, display: str, addr: str) -> bytes:
    """``Name: display <addr>``: the address must be a plain dot-atom one (we never encode it)."""
    if not is_plain_address(addr):
        raise HeaderRefused(f"{name}: {addr!r} is not an address this writer can put in a header")
    phrase = _phrase(display)
    return _fold(name, [*phrase, (False, f"<{addr}>")] if phrase else [(False, addr)])


def structured_header(name: str, value: str) -> bytes:
    """A value we built (Date, Message-ID, List-Unsubscribe, Content-Type): printable ASCII only,
    folded at its spaces; anything else is refused, never cleaned."""
    if not all(_TOKEN.fullmatch(w) for w in value.split(" ")):
        raise HeaderRefused(f"{name}: {value[:80]!r} has characters a structured header cannot carry")
    return _fold(name, [(False, w) for w in value.split(" ")])


def list_id_header(value: str) -> bytes:
    """``List-Id: phrase <id>``: the phrase (the list's name) written like a display name."""
    phrase, _, ident = value.rpartition(" ")
    if not re.fullmatch(r"<[A-Za-z0-9.-]+>", ident):
        raise HeaderRefused(f"List-Id: {ident!r} is not a list identifier")
    return _fold("List-Id", [*_phrase(phrase), (False, ident)])


def header_line(name: str, value: str) -> bytes:
    """One extra header of an ``OutgoingMessage`` (``msg.headers``), written by its kind."""
    if name == "List-Id":
        return list_id_header(value)
    if name in ("Reply-To", "Sender", "Cc"):
        display, addr = parseaddr(value)
        return address_header(name, display, addr)
    if name in _TEXT_HEADERS:
        return text_header(name, value)
    return structured_header(name, value)


_TEXT_HEADERS = frozenset({"Subject", "Comments", "Keywords"})


# ---------------------------------------------------------------------------------------------
# Writing one message


def mime_bytes(msg: OutgoingMessage, date: datetime, bodies: tuple[bytes, bytes] | None = None) -> DotFree:
    """The wire bytes of ``msg``: its headers, then multipart/alternative with the plain-text part
    first and the HTML part last (preferred). The two quoted-printable bodies are encoded by
    ``binascii`` (C), or come encoded already (``bodies``: text, html, from ``MarkedText``), and
    are joined with a boundary that quoted-printable text cannot contain (``=_`` is not a valid QP
    escape). The lines that repeat across messages (From, Subject, Date, List-Id, ...) are written
    once and cached."""
    boundary = f"=_{secrets.token_hex(16)}"
    parts = [
        _from_line(msg.from_header),
        address_header("To", msg.to_name, msg.to_email),
        _subject_line(msg.subject),
        _date_line(date),
        _message_id_line(msg.message_id),
        *(_cached_line(name, value) for name, value in msg.headers),
        b"MIME-Version: 1.0\r\n",
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode(),
    ]
    text, html = bodies or (_quoted_printable(msg.text), _quoted_printable(msg.html))
    for subtype, body in (("plain", text), ("html", html)):
        parts.append(
            f'--{boundary}\r\nContent-Type: text/{subtype}; charset="utf-8"\r\n'
            f"Content-Transfer-Encoding: quoted-printable\r\n\r\n".encode()
        )
        parts += (body, b"\r\n")  # this CRLF belongs to the next delimiter
    parts.append(f"--{boundary}--\r\n".encode())
    return DotFree(b"".join(parts))


def prepend_field(field: bytes, raw: bytes) -> bytes:
    """``field``, a header written by someone else (dkimpy's DKIM-Signature), before the message
    ``raw``. Dot-free bytes stay marked so only if no line of ``field`` starts with a dot (a folded
    header's lines start with its name or a space, so this holds; it is checked, not assumed)."""
    joined = field + raw
    if isinstance(raw, DotFree) and not field.startswith(b".") and b"\n." not in field:
        return DotFree(joined)
    return joined


@lru_cache(maxsize=64)
def _from_line(from_header: str) -> bytes:
    from_name, from_addr = parseaddr(from_header)
    return address_header("From", from_name, from_addr)


@lru_cache(maxsize=256)
def _subject_line(subject: str) -> bytes:
    return text_header("Subject", subject)


@lru_cache(maxsize=64)
def _date_line(date: datetime) -> bytes:
    return structured_header("Date", format_datetime(date))


def _message_id_line(message_id: str) -> bytes:
    if _MESSAGE_ID.fullmatch(message_id) is None:
        raise HeaderRefused(f"Message-ID: {message_id[:80]!r} is not a dot-atom message id")
    return check_header("Message-ID", f"Message-ID: {message_id}\r\n")


_REPEATED = frozenset({"List-Id", "List-Unsubscribe-Post"})
_cached_header_line = lru_cache(maxsize=256)(header_line)


def _cached_line(name: str, value: str) -> bytes:
    return _cached_header_line(name, value) if name in _REPEATED else header_line(name, value)


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
