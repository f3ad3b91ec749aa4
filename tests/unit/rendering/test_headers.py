"""The send path's direct MIME assembly parses to the same message as the email package's."""

from __future__ import annotations

from datetime import UTC, datetime
from email import message_from_bytes, policy
from email.errors import HeaderParseError
from email.headerregistry import Address

from hypothesis import given, settings
from hypothesis import strategies as st

from digest.rendering.headers import _fold_once, _plain_address_line, _plain_line, build_mime, mime_bytes
from digest.rendering.message import OutgoingMessage

HEADERS = ("From", "To", "Subject", "Date", "Message-ID", "List-Id", "List-Unsubscribe", "List-Unsubscribe-Post")


def _message(text: str, html: str, name: str = "Zoë Ann") -> OutgoingMessage:
    return OutgoingMessage(
        delivery_id=1,
        message_id="<digest.1.2.abc@news.example.org>",
        from_header="Evidence Digest <digest@news.example.org>",
        to_email="zoe@example.org",
        to_name=name,
        subject="Your digest: café, ünïcode and = signs",
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


def _same(msg: OutgoingMessage) -> None:
    date = datetime(2026, 11, 27, 12, tzinfo=UTC)
    reference = message_from_bytes(build_mime(msg, date).as_bytes(), policy=policy.default)
    raw = mime_bytes(msg, date)
    fast = message_from_bytes(raw, policy=policy.default)
    assert not fast.defects and all(not part.defects for part in fast.iter_parts())
    assert [p.get_content_type() for p in fast.iter_parts()] == ["text/plain", "text/html"]
    for header in HEADERS:
        assert fast[header] == reference[header], header
    for subtype in ("plain", "html"):
        assert fast.get_body((subtype,)).get_content() == reference.get_body((subtype,)).get_content()
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    assert b"\n" not in raw.replace(b"\r\n", b"")


def test_a_digest_shaped_message_is_the_same() -> None:
    html = (
        '<html lang="en"><body>' + '<p style="color:#333">HR 0.80 — café &amp; more text ' * 500 + "</p></body></html>"
    )
    text = (
        "Hi Zoë,\n\n" + "Trailing space here \nA = sign\n.\n. leading dot\nFrom the start\n" * 50 + "--=_not a boundary"
    )
    _same(_message(text, html))


@settings(max_examples=60, deadline=None)
@given(
    text=st.text(max_size=400), html=st.text(max_size=400), name=st.text(max_size=30).map(lambda s: " ".join(s.split()))
)
def test_any_text_is_the_same(text: str, html: str, name: str) -> None:
    _same(_message(text, html, name))


ASCII = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80)


@settings(max_examples=300, deadline=None)
@given(value=ASCII, name=st.sampled_from(["Message-ID", "List-Unsubscribe", "Reply-To", "X-Campaign"]))
def test_a_header_written_directly_is_the_policys_line(value: str, name: str) -> None:
    if name == "Message-ID":
        value = f"<{value.replace(' ', '')}>"
    direct = _plain_line(name, value)
    if direct is not None:
        assert direct == _fold_once(name, value)


@settings(max_examples=300, deadline=None)
@given(
    name=ASCII.map(lambda s: " ".join(s.split())),
    addr=st.from_regex(r"[a-zA-Z0-9.+_=?-]{1,12}@[a-z0-9.-]{1,12}", fullmatch=True),
)
def test_an_address_written_directly_is_the_policys_line(name: str, addr: str) -> None:
    try:
        address = Address(display_name=name, addr_spec=addr)
    except (ValueError, IndexError, HeaderParseError):
        return
    direct = _plain_address_line("To", name, addr)
    if direct is not None:
        assert direct == _fold_once("To", address)


def test_the_usual_per_recipient_headers_take_the_direct_path() -> None:
    assert _plain_address_line("To", "Jane Doe", "jane.doe+x@example.org") is not None
    assert _plain_line("Message-ID", "<digest.1.2.abc@news.example.org>") is not None
    assert _plain_line(
        "List-Unsubscribe", "<https://d.example.org/unsubscribe/a.b>, <mailto:u+1-x@d.example.org?subject=unsubscribe>"
    )
