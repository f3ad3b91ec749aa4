"""No CR or LF in a user-supplied field (subscriber name, issue subject, summary title) can create a header."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from email import message_from_bytes, policy
from types import SimpleNamespace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from digest.rendering.compiled import EmailRenderer, Variant, item_view
from digest.rendering.compose import Addressee, MessageComposer
from digest.subscribers.schema import SubscriberIn
from digest.subscribers.tokens import Tokens

EXPECTED = {
    "from",
    "to",
    "subject",
    "date",
    "message-id",
    "list-id",
    "list-unsubscribe",
    "list-unsubscribe-post",
    "mime-version",
    "content-type",
}
PIECES = [
    "\r\n",
    "\n",
    "\r",
    "\r\n\r\n",
    "Bcc: victim@example.net",
    "X-Injected: yes",
    "\u2028",
    "\x85",
    "\x0b",
    " ",
    "\t",
    "ok",
    "é",
]
hostile = st.lists(st.sampled_from(PIECES), max_size=8).map("".join)

renderer = EmailRenderer(base_url="https://digest.example.org", list_name="Clinical evidence digest")
composer = MessageComposer(
    renderer,
    Tokens("k"),
    base_url="https://digest.example.org",
    from_header="Evidence Digest <digest@news.example.org>",
    list_name="Clinical evidence digest",
    domain="news.example.org",
    secret="k",
)


def _summary(title: str) -> SimpleNamespace:
    return SimpleNamespace(
        id="s1",
        title=title or "t",
        key_takeaway="k",
        summary="",
        patient_summary="",
        study_type="RCT",
        sample_size=10,
        evidence_level=2,
        study_published="2026-10",
        outcomes=[],
        safety="",
        source_url="https://example.org/s1",
        published_at=datetime(2026, 11, 26, tzinfo=UTC),
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(name=hostile, title=hostile, subject=hostile)
def test_hostile_fields_never_become_headers(name: str, title: str, subject: str) -> None:
    variant = Variant(
        edition="clinician",
        items=(item_view(_summary(title), []),),
        specialties=(),
        issue={"id": 1, "subject": subject, "preheader": "", "intro_html": "", "intro_text": "", "web_url": ""},
    )
    who = Addressee(1, "reader@example.org", name, "clinician", {})
    raw = composer.compose(1, 1, who, variant, datetime(2026, 11, 27, tzinfo=UTC)).raw

    head = raw.split(b"\r\n\r\n", 1)[0]
    for line in re.split(rb"\r\n", head):
        assert line[:1] in (b" ", b"\t") or line.split(b":", 1)[0].lower().decode() in EXPECTED, line
    assert b"\n" not in head.replace(b"\r\n", b"") and b"\r" not in head.replace(b"\r\n", b"")
    parsed = message_from_bytes(raw, policy=policy.default)
    assert {k.lower() for k in parsed} == EXPECTED
    assert parsed["To"].addresses[0].addr_spec == "reader@example.org"


def test_the_sign_up_schema_flattens_names() -> None:
    data = SubscriberIn(email="a@example.org", specialties=["cardiology"], name="Eve\r\nBcc: x@example.net")
    assert data.name == "Eve Bcc: x@example.net"
