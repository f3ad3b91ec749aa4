"""A body cut at its markers fills in to the same text, and its pre-encoded quoted-printable pieces
join into a body that decodes to that text, within the 76-character line limit."""

from __future__ import annotations

import binascii
from datetime import UTC, datetime
from email import message_from_bytes, policy

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.rendering.headers import _encode_piece, mime_bytes, quoted_printable_piece
from digest.rendering.marked import MarkedText
from digest.rendering.message import OutgoingMessage

MARKERS = {"%%n0:greeting%%": "greeting", "%%n0:url%%": "url"}


def _decoded(encoded: bytes) -> str:
    lines = encoded.split(b"\r\n")
    assert all(len(line) <= 76 for line in lines), max(lines, key=len)
    assert not any(line.startswith(b".") for line in lines)  # SMTP needs no dot-stuffing
    assert b"\n" not in encoded.replace(b"\r\n", b"") and encoded.endswith(b"\r\n")
    return binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")).decode("utf-8")


def _expected(text: str) -> str:
    return text if text.endswith("\n") else text + "\n"


# Text as a body holds it: any Unicode except lone surrogates (not encodable; ingest refuses them).
# Dots and line breaks are drawn often: a dot that starts a line is written "=2E".
chars = st.characters(blacklist_characters="\r", blacklist_categories=("Cs",)) | st.sampled_from(".\n=")
pieces = st.lists(st.text(alphabet=chars, max_size=160), min_size=1, max_size=5)
values = st.text(
    alphabet=st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)) | st.just("."), max_size=90
)


@settings(max_examples=300, deadline=None)
@given(
    pieces=pieces,
    greeting=values,
    url=values,
    fields=st.lists(st.sampled_from(sorted(MARKERS)), min_size=4, max_size=4),
)
def test_filled_pieces_decode_to_the_filled_text(pieces: list[str], greeting: str, url: str, fields: list[str]) -> None:
    body = pieces[0] + "".join(marker + piece for marker, piece in zip(fields, pieces[1:], strict=False))
    marked = MarkedText(body, MARKERS)
    filled = {"greeting": greeting, "url": url}
    text = body.replace("%%n0:greeting%%", greeting).replace("%%n0:url%%", url)

    assert marked.fill(filled) == text
    encoded = marked.fill_quoted_printable(filled)
    assert encoded is not None
    assert _decoded(encoded) == _expected(text)


def test_line_length_edges() -> None:
    for left in (
        "x" * 74,
        "x" * 75,
        "x" * 76,
        "x" * 152,
        "é" * 26,
        "a b " * 19,
        "x" * 75 + " ",
        ".",
        "." * 160,
        "x" * 72 + "é" + "." * 80,
    ):
        for value in ("", "v" * 76, "é" * 30, " ", "=", ".", "." * 90):
            for right in ("", "y" * 76, "z\n", ".", "\n." + "=" * 80):
                marked = MarkedText(left + "%%n0:url%%" + right, MARKERS)
                encoded = marked.fill_quoted_printable({"url": value})
                assert encoded is not None and _decoded(encoded) == _expected(left + value + right)


def test_a_line_break_in_a_value_or_a_cr_in_the_body_falls_back_to_whole_encoding() -> None:
    assert MarkedText("a%%n0:url%%b", MARKERS).fill_quoted_printable({"url": "x\ny"}) is None
    assert MarkedText("a\r%%n0:url%%\nb", MARKERS).fill_quoted_printable({"url": ""}) is None


def test_the_message_from_pre_encoded_bodies_reads_as_the_one_encoded_whole() -> None:
    text = MarkedText("%%n0:greeting%%\n\n" + "Trailing space \n.\nA = sign — café\n" * 40, MARKERS)
    html = MarkedText('<p>%%n0:greeting%%</p><a href="%%n0:url%%">' + "<td>HR 0.80 — ünïcode</td>" * 300, MARKERS)
    filled = {"greeting": "Hi Zoë,", "url": "https://digest.example.org/unsubscribe/abc"}
    msg = OutgoingMessage(1, "<digest.1.2.abc@example.org>", "Digest <d@example.org>", "zoe@example.org", "Zoë", "S",
                          text.fill(filled), html.fill(filled))  # fmt: skip
    date = datetime(2026, 11, 27, 12, tzinfo=UTC)
    bodies = text.fill_quoted_printable(filled), html.fill_quoted_printable(filled)
    assert bodies[0] is not None and bodies[1] is not None
    fast = message_from_bytes(mime_bytes(msg, date, (bodies[0], bodies[1])), policy=policy.default)
    whole = message_from_bytes(mime_bytes(msg, date), policy=policy.default)
    assert not fast.defects and all(not part.defects for part in fast.iter_parts())
    for subtype in ("plain", "html"):
        assert fast.get_body((subtype,)).get_content() == whole.get_body((subtype,)).get_content()


@settings(max_examples=500, deadline=None)
@given(text=st.text(alphabet=st.characters(min_codepoint=9, max_codepoint=127) | st.sampled_from(". =é"), max_size=90))
def test_short_ascii_pieces_take_the_shortcut_to_the_same_bytes(text: str) -> None:
    assert quoted_printable_piece(text, final=False) == _encode_piece(text, final=False)
