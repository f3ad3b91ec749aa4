"""Script and HTML payloads in every field a user or an importer supplies come out as text: in the
HTML email (summary title, key takeaway, summary, study type, patient summary, safety, outcome names, the
subscriber's name, which only reaches the To header; both editions) and in the editor's Markdown intro.
Parsed with lxml: no script element, no event-handler attribute, no javascript: URL, and the payload is
readable as text."""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage

import lxml.html
from hypothesis import given, settings
from hypothesis import strategies as st

from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.rendering.intro import render_intro
from digest.selection.service import pending_page, plan_digests
from digest.wiring import Services
from tests.conftest import Clock
from tests.factories import add_subscriber, add_summaries, days_before, summary_record

PAYLOADS = [
    '<script>alert("title")</script>',
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
    "</td></tr></table><iframe src=//evil.example></iframe>",
    '<a href="javascript:alert(1)">click</a>',
    "<style>body{display:none}</style>",
]


def scripts(doc: lxml.html.HtmlElement) -> list[str]:
    return [s.text or "" for s in doc.xpath("//script")]


def assert_inert(html: str, where: str, own_scripts: frozenset[str] = frozenset()) -> lxml.html.HtmlElement:
    """No element or attribute that would run script, except the template's own inline scripts
    (``own_scripts``, taken from a clean render); returns the parsed document."""
    doc = lxml.html.document_fromstring(html)
    assert set(scripts(doc)) <= own_scripts and doc.xpath("//script[@src]") == [], where
    assert doc.xpath("//iframe | //svg | //object | //embed") == [], where
    assert doc.xpath("//img[@onerror]") == [], where
    for element in doc.iter():
        if not isinstance(element.tag, str):
            continue
        for name, value in element.attrib.items():
            assert not name.lower().startswith("on"), f"{where}: <{element.tag} {name}={value!r}>"
            if name.lower() in ("href", "src", "action"):
                assert not value.strip().lower().startswith("javascript:"), f"{where}: {name}={value!r}"
    return doc


def _html_part(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def test_payloads_in_summaries_and_names_arrive_escaped(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    fields = {
        "title": PAYLOADS[0] + " title",
        "key_takeaway": PAYLOADS[1] + " takeaway",
        "summary": PAYLOADS[2] + " summary",
        # Through a macro that serves the text part too.
        "study": {
            "type": PAYLOADS[2] + " randomised trial",
            "sample_size": 1200,
            "evidence_level": 2,
            "published": "2026-10",
        },
        "patient_summary": PAYLOADS[3] + " patient",
        "safety": PAYLOADS[4] + " safety",
        "outcomes": [
            {
                "name": PAYLOADS[5] + " outcome",
                "measure": "HR",
                "value": 0.8,
                "ci_low": 0.7,
                "ci_high": 0.9,
                "p": "<0.001",
            }
        ],
    }
    with session_scope(services.sessions) as s:
        add_summaries(
            s,
            summary_record(id="hostile-1", specialties=["cardiology"], published_at=days_before(clock(), 1), **fields),
        )
        for edition in ("clinician", "patient"):
            add_subscriber(
                s,
                f"{edition}@example.org",
                ["cardiology"],
                created_at=clock() - timedelta(days=3),
                edition=edition,
                name='Ada <script>alert("name")</script> <b onmouseover=x>',
            )
        plan = plan_digests(s, clock(), services.plan_options())
        assert plan.issue_id is not None
        ids = pending_page(s, plan.issue_id, 10)
    services.delivery.deliver(ids)

    messages = smtp_sink.messages
    assert len(messages) == 2
    for message in messages:
        doc = assert_inert(_html_part(message), f"email to {message['To']}")
        text = doc.text_content()
        edition = message["To"].addresses[0].username
        assert message["To"].addresses[0].addr_spec == f"{edition}@example.org"  # the name stays a display name
        shown = (
            (0, 1, 2, 4, 5) if edition == "clinician" else (0, 3)
        )  # title, takeaway, study type, safety, outcome | patient summary
        for n in shown:
            assert PAYLOADS[n] in text, f"{PAYLOADS[n]!r} is not shown as text to the {edition}"


hostile_markdown = st.lists(
    st.sampled_from(
        [*PAYLOADS, "[x](javascript:alert(1))", "<b onclick=x>bold</b>", "**ok**", "\n\n", "text", "<scr<script>ipt>"]
    ),
    max_size=6,
).map("".join)


@settings(max_examples=60, deadline=None)
@given(source=hostile_markdown)
def test_editor_intro_markdown_cannot_inject(source: str) -> None:
    html, text = render_intro(source)
    if html:
        assert_inert(f"<div>{html}</div>", f"intro {source!r}")
        assert "<script" not in html.lower()
    assert "<script" not in text.lower()
