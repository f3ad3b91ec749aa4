"""The one MIME writer: what it writes parses back to what was meant, within RFC 5322/2047 limits,
and no value, whatever it carries, becomes a second header."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.header import decode_header, make_header

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.rendering.headers import (
    DotFree,
    HeaderRefused,
    address_header,
    check_header,
    clean,
    mime_bytes,
    prepend_field,
    structured_header,
    text_header,
)
from digest.rendering.message import OutgoingMessage

HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post")
INJECTION = "=?utf-8?q?=0D=0AReply-To:_attacker@evil.example=0D=0AContent-Type:_text/html=0D=0A=0D=0A<h1>x?="
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


def _message(text: str, html: str, name: str = "Zoë Ann", subject: str = "Your digest: café, ünïcode and = signs"):
    return OutgoingMessage(
        delivery_id=1,
        message_id="<digest.1.2.abc@news.example.org>",
        from_header="Evidence Digest <digest@news.example.org>",
        to_email="zoe@example.org",
        to_name=name,
        subject=subject,
        text=text,
        html=html,
        headers=(
            ("List-Id", "Clinical evidence digest <clinical-evidence-digest.news.example.org>"),
            (
                "List-Unsubscribe",
                "<https://digest.example.org/unsubscribe/" + "t" * 300 + ">, <mailto:u@news.example.org>",
            ),
            ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"),
        ),
    )


def assert_within_limits(head: bytes) -> None:
    """Every header line within 998, every line that can fold within 78, every encoded word within 75."""
    for line in head.split(b"\r\n"):
        assert len(line) <= 998, line
        if not line.startswith((b"List-Unsubscribe:", b" <https://")):
            assert len(line) <= 78, line
        for word in ENCODED_WORD.findall(line):
            assert len(word) <= 75, word
    assert b"\n" not in head.replace(b"\r\n", b"") and b"\r" not in head.replace(b"\r\n", b"")


def display_name(raw: bytes, name: str = "To") -> str:
    """The display name of header ``name`` as an RFC 2047 decoder reads it (the ``email`` package's
    address parser keeps the folding space between two encoded words of a phrase; RFC 2047 6.2
    drops it, as mail clients do)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("ascii").replace("\r\n ", " ")
    value = next(line.split(": ", 1)[1] for line in head.split("\r\n") if line.startswith(f"{name}: "))
    phrase = value.rsplit(" <", 1)[0] if value.endswith(">") else ""
    if phrase.startswith('"'):
        return re.sub(r"\\(.)", r"\1", phrase[1:-1])
    return str(make_header(decode_header(phrase))) if phrase else ""


def _check(msg: OutgoingMessage) -> None:
    raw = mime_bytes(msg, datetime(2026, 11, 27, 12, tzinfo=UTC))
    assert isinstance(raw, DotFree) and not raw.startswith(b".") and b"\r\n." not in raw
    parsed = message_from_bytes(raw, policy=policy.default)
    assert not parsed.defects and all(not part.defects for part in parsed.iter_parts())
    assert list(parsed) == [*HEADERS[:5], *HEADERS[5:], "MIME-Version", "Content-Type"]
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert str(parsed["Subject"]) == clean(msg.subject, 998)
    assert display_name(raw) == clean(msg.to_name, 200)
    assert parsed["To"].addresses[0].addr_spec == msg.to_email
    assert parsed["List-Unsubscribe"] == dict(msg.headers)["List-Unsubscribe"]
    for subtype, sent in (("plain", msg.text), ("html", msg.html)):
        got = parsed.get_body((subtype,)).get_content().replace("\r\n", "\n")
        assert got.rstrip("\n") == sent.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
    assert_within_limits(raw.split(b"\r\n\r\n", 1)[0])


def test_a_digest_shaped_message_reads_back() -> None:
    html = (
        '<html lang="en"><body>' + '<p style="color:#333">HR 0.80 — café &amp; more text ' * 500 + "</p></body></html>"
    )
    text = (
        "Hi Zoë,\n\n" + "Trailing space here \nA = sign\n.\n. leading dot\nFrom the start\n" * 50 + "--=_not a boundary"
    )
    _check(_message(text, html))


@settings(max_examples=150, deadline=None)
@given(
    text=st.text(max_size=300),
    name=st.text(max_size=120),
    subject=st.text(min_size=1, max_size=400) | st.sampled_from([INJECTION, "a" * 1000, "é" * 500]),
)
def test_any_text_reads_back_within_the_limits(text: str, name: str, subject: str) -> None:
    if not clean(subject):
        subject = "s"
    _check(_message(text, text, name, subject))


def test_an_encoded_word_from_outside_is_literal_text() -> None:
    line = text_header("Subject", f"Weekly {INJECTION} digest")
    assert b"Reply-To" not in line and b"=0D=0A" not in line
    parsed = message_from_bytes(line + b"\r\nbody", policy=policy.default)
    assert parsed.keys() == ["Subject"] and str(parsed["Subject"]) == f"Weekly {INJECTION} digest"
    to = address_header("To", f"Eve {INJECTION}", "eve@example.org")
    parsed = message_from_bytes(to + b"\r\nbody", policy=policy.default)
    assert parsed.keys() == ["To"] and display_name(to) == f"Eve {INJECTION}"


def test_control_and_bidi_characters_are_dropped() -> None:
    assert clean("a\x00b\x07c\x1bd\x7fe\x9bf\u202eg\u2066h\r\ni\u2028j\tk") == "abcdefgh i j k"
    assert text_header("Subject", "Pay \u202etxt.exe\x00") == b"Subject: Pay txt.exe\r\n"


def test_plain_values_are_written_as_they_are() -> None:
    assert address_header("To", "Jane Doe", "jane.doe+x@example.org") == b"To: Jane Doe <jane.doe+x@example.org>\r\n"
    assert address_header("To", "", "jane@example.org") == b"To: jane@example.org\r\n"
    assert address_header("To", "Doe, Jane", "j@example.org") == b'To: "Doe, Jane" <j@example.org>\r\n'
    assert text_header("Subject", "Your digest") == b"Subject: Your digest\r\n"


@pytest.mark.parametrize("value", ["<a@b>\r\nBcc: x@y", "<a@b>\nX: y", "<a@b>\rX: y", "caf\u00e9", "a\x00b"])
def test_a_structured_value_that_is_not_printable_ascii_is_refused(value: str) -> None:
    with pytest.raises(HeaderRefused):
        structured_header("List-Unsubscribe", value)


@pytest.mark.parametrize("addr", ["a@b.example\r\nBcc: x@y", "a b@example.org", "<a@example.org>", "é@example.org"])
def test_an_address_that_is_not_plain_is_refused(addr: str) -> None:
    with pytest.raises(HeaderRefused):
        address_header("To", "x", addr)


@pytest.mark.parametrize(
    "written",
    [
        "Subject: a\r\nBcc: x@y\r\n",
        "Subject: a\nBcc: x\r\n",
        "Subject: a\rb\r\n",
        "Subject: a\x00\r\n",
        "Subject: " + "a" * 990 + "\r\n",
    ],
)
def test_the_last_check_refuses_a_second_header_and_long_lines(written: str) -> None:
    with pytest.raises(HeaderRefused):
        check_header("Subject", written)


def test_a_prepended_field_with_a_line_leading_dot_loses_the_dot_free_mark() -> None:
    """SMTP then dot-stuffs the message, as it must; a field without one keeps the mark."""
    body = DotFree(b"Subject: x\r\n\r\nbody\r\n")
    assert isinstance(prepend_field(b"X-Signed: a;\r\n b\r\n", body), DotFree)
    assert not isinstance(prepend_field(b"X-Signed: a;\r\n.b\r\n", body), DotFree)
    assert not isinstance(prepend_field(b".X: a\r\n", body), DotFree)
    assert prepend_field(b"X: a\r\n", body) == b"X: a\r\nSubject: x\r\n\r\nbody\r\n"
