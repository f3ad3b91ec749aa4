"""The hostile-input corpus, through every way in, checked at a real SMTP server (aiosmtpd).

Encoded words carrying CR/LF, bare CR, LF, NUL, BEL, ESC, U+202E and very long values enter as a
feed entry, a JSON import, an API post, a CSV subscriber list and an editor's subject. What arrives
must carry exactly the headers we write, one of each, every line within RFC 5322 (998, and 78 where
the value can fold) and every encoded word within RFC 2047's 75; the attacker's words arrive as
literal text; the DKIM signature verifies, and fails once a second Subject, From, List-Unsubscribe
or Reply-To is prepended. Run on the lowest supported Python (3.11, before CVE-2024-6923's fix in
3.11.10 the standard library itself wrote the decoded CR/LF out: the writer does not rely on it).
"""

from __future__ import annotations

import base64
import json
import re
import sys
import tomllib
from collections.abc import Callable
from datetime import timedelta
from email import message_from_bytes, policy
from email.header import decode_header, make_header
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from digest import dispatch
from digest.config import Settings
from digest.db import session_scope
from digest.delivery.sink import SMTPSink
from digest.ingest.specialties import SPECIALTIES
from digest.rendering.headers import clean
from digest.rendering.subjects import LEAD_MAX, shorten
from digest.wiring import Services
from tests.conftest import Clock, FeedServer
from tests.factories import (
    add_campaign,
    add_subscriber,
    add_summaries,
    days_before,
    feed_entry,
    json_feed,
    summary_record,
)

KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
DNS_RECORD = b"v=DKIM1; k=rsa; p=" + base64.b64encode(
    KEY.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
)
INJECTION = "=?utf-8?q?=0D=0AReply-To:_attacker@evil.example=0D=0AContent-Type:_text/html=0D=0A=0D=0A<h1>owned</h1>?="
# The corpus: what the attacker puts where text is allowed. Control and direction characters are
# removed (summaries) or refused (names, subjects) on the way in; the rest reaches the writer.
CORPUS = {
    "encoded-word": f"{INJECTION} inside",
    "bare-cr": "Bare\rReply-To: attacker@evil.example",
    "lf": "Line\nBcc: victim@example.net",
    "crlf-blank": "Body\r\n\r\n<h1>attacker's body</h1>",
    "nul-bel-esc-del": "Nul\x00 bell\x07 esc\x1b[31m del\x7f c1\x9b end",
    "rtl-override": "Invoice \u202egpj.exe and isolate \u2066x\u2069",
    "long-word": "x" * 480,
    "long-text": " ".join(["encoded=?words"] * 31),
}
EXPECTED = [
    "DKIM-Signature",
    "From",
    "To",
    "Subject",
    "Date",
    "Message-ID",
    "List-Id",
    "Feedback-ID",
    "List-Unsubscribe",
    "List-Unsubscribe-Post",
    "MIME-Version",
    "Content-Type",
]
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")
TOKEN = "ingest-token-for-tests"


def dns(name: bytes, timeout: int = 5) -> bytes:
    return DNS_RECORD if name == b"sel2026._domainkey.news.example.org." else b""


@pytest.fixture
def settings(settings: Settings, tmp_path: Path) -> Settings:
    key_file = tmp_path / "dkim.pem"
    key_file.write_bytes(
        KEY.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    settings.dkim_domain, settings.dkim_selector, settings.dkim_key_file = "news.example.org", "sel2026", key_file
    settings.ingest_token = TOKEN
    return settings


# Entry i of the corpus is filed under specialty i, read by reader i alone: each digest then has
# one item, and its Subject leads with that item's title.
SLUGS = [slug for slug, _ in SPECIALTIES[: len(CORPUS)]]
NAMES = [name for _, name in SPECIALTIES[: len(CORPUS)]]


def _records(now: Any) -> list[dict[str, Any]]:
    return [
        summary_record(id=f"h-{n}", title=value, specialties=[SLUGS[n]], published_at=days_before(now, 1))
        for n, value in enumerate(CORPUS.values())
    ]


def _header_fields(raw: bytes) -> list[bytes]:
    return re.split(rb"\r\n(?![ \t])", raw.split(b"\r\n\r\n", 1)[0])


def _phrase(value: str) -> str:
    phrase = value.rsplit(" <", 1)[0] if value.endswith(">") else ""
    if phrase.startswith('"'):
        return re.sub(r"\\(.)", r"\1", phrase[1:-1])
    return str(make_header(decode_header(phrase))) if phrase else ""


def check_received(raw: bytes) -> dict[str, str]:
    """Everything the corpus test demands of one message; returns its decoded Subject and To name."""
    fields = _header_fields(raw)
    assert [f.split(b":", 1)[0].decode() for f in fields] == EXPECTED, fields
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b"") and b"\r" not in head.replace(b"\r\n", b"")
    assert re.search(rb"[^\x09\x0a\x0d\x20-\x7e]", head) is None
    for line in head.split(b"\r\n"):
        assert len(line) <= 998, line
        if not line.startswith((b"List-Unsubscribe:", b"DKIM-Signature:", b" ")) or ENCODED_WORD.search(line):
            assert len(line) <= 78, line
        for word in ENCODED_WORD.findall(line):
            assert len(word) <= 75, word
    parsed = message_from_bytes(raw, policy=policy.default)
    assert not parsed.defects
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert parsed["Reply-To"] is None and parsed["Bcc"] is None and parsed["Cc"] is None
    subject = str(parsed["Subject"])
    unfolded = {
        f.split(b":", 1)[0].decode(): f.split(b":", 1)[1].replace(b"\r\n", b"").strip().decode() for f in fields
    }
    to_name = _phrase(unfolded["To"])
    for text in (subject, to_name):
        assert re.search("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]", text) is None, text

    assert dkim.verify(raw, dnsfunc=dns)
    signature, _, rest = raw.partition(b"\r\nFrom:")
    for added in (
        b"Subject: Urgent: confirm your password",
        b"From: Security <security@evil.example>",
        b"List-Unsubscribe: <https://evil.example/unsubscribe>",
        b"Reply-To: attacker@evil.example",
    ):
        assert not dkim.verify(added + b"\r\n" + raw, dnsfunc=dns), added
        assert not dkim.verify(signature + b"\r\n" + added + b"\r\nFrom:" + rest, dnsfunc=dns), added
    return {"subject": subject, "to": to_name}


def _subjects_sent(services: Services, smtp_sink: SMTPSink, clock: Clock) -> list[str]:
    """Send the day's digests (one reader per specialty) and check each message; their Subjects."""
    with session_scope(services.sessions) as s:
        for n, slug in enumerate(SLUGS):
            add_subscriber(s, f"r{n}@example.org", [slug], name="Cara Jones", created_at=clock() - timedelta(days=3))
    dispatch.send_due(services, clock())
    got = {r.rcpt_tos[0]: check_received(r.raw)["subject"] for r in smtp_sink.received}
    return [got[f"r{n}@example.org"] for n in range(len(SLUGS))]


def _expect_titles(subjects: list[str]) -> None:
    """Each Subject is "<Specialty> digest, <date>: <the cleaned title, shortened>" (digest/rendering/subjects.py)."""
    for subject, value, name in zip(subjects, CORPUS.values(), NAMES, strict=True):
        prefix, _, lead = subject.partition(": ")
        assert prefix.startswith(f"{name} digest, ")
        assert lead == shorten(clean(value), max(12, LEAD_MAX - len(prefix) - 2))
    # The attacker's encoded word reached the writer and arrived as literal text (shortened).
    assert any(s.partition(": ")[2].startswith(INJECTION[:20]) for s in subjects)


def test_the_corpus_runs_on_the_lowest_supported_python() -> None:
    """The corpus means most on the oldest interpreter the project admits, whose email package is the
    least hardened: the suite's interpreter must be the minor version ``requires-python`` names."""
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    lowest = tuple(int(part) for part in pyproject["project"]["requires-python"].removeprefix(">=").split("."))
    assert sys.version_info[:2] == lowest, f"run the suite on Python {'.'.join(map(str, lowest))}, not {sys.version}"


def test_feed_entries(
    cli: Callable[..., Any], services: Services, smtp_sink: SMTPSink, clock: Clock, feed_server: FeedServer
) -> None:
    entries = [
        feed_entry(n, title=value, categories=[NAMES[n]], published=clock() - timedelta(days=1))
        for n, value in enumerate(CORPUS.values())
    ]
    url = feed_server.publish("/hostile.json", json_feed(*entries), content_type="application/feed+json")
    assert cli("feeds", "add", url).exit_code == 0
    polled = cli("feeds", "poll")
    assert polled.exit_code == 0, polled.output
    with session_scope(services.sessions) as s:
        from digest.ingest.models import FeedSource, Summary

        feed = s.query(FeedSource).one()
        assert "field 'title': removed" in (feed.last_error or "")  # the record and the field named
        titles = {x.id: x.title for x in s.query(Summary)}
    assert sorted(titles.values()) == sorted(clean(v) for v in CORPUS.values())
    _expect_titles(_subjects_sent(services, smtp_sink, clock))


def test_json_import(
    cli: Callable[..., Any], services: Services, smtp_sink: SMTPSink, clock: Clock, tmp_path: Path
) -> None:
    path = tmp_path / "hostile.json"
    path.write_text(json.dumps(_records(clock())))
    result = cli("import", str(path))
    assert result.exit_code == 0, result.output
    assert (
        "record 5 field 'title': removed 5 control or direction character(s) (U+0000, U+0007, U+001B, U+007F, U+009B)"
        in " ".join(result.output.split())
    )
    _expect_titles(_subjects_sent(services, smtp_sink, clock))


def test_api(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    from digest.web.app import create_app

    with TestClient(create_app(services)) as client:
        response = client.post("/api/summaries", json=_records(clock()), headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 201, response.text
    cleaned = {(e["record"], e["field"]) for e in response.json()["cleaned"]}
    assert cleaned == {(5, "title"), (6, "title")}
    _expect_titles(_subjects_sent(services, smtp_sink, clock))


def test_csv_subscribers(
    cli: Callable[..., Any], services: Services, smtp_sink: SMTPSink, clock: Clock, tmp_path: Path
) -> None:
    names = {
        "encoded": f"Eve {INJECTION}",
        "quoted": 'Doe, "Jane" \\ Q',
        "long": "n" * 200,
        "unicode": "Zoë Ñúñez",
        "nul": "Mal\x00lory",
        "rtl": "Mal\u202elory",
        "bel": "Bell\x07",
    }
    path = tmp_path / "subscribers.csv"
    path.write_text(
        "email,specialties,name\n"
        + "".join(f'{key}@example.org,cardiology,"{v.replace(chr(34), chr(34) * 2)}"\n' for key, v in names.items())
    )
    refused = cli("subscribers", "import", str(path))
    assert refused.exit_code != 0
    out = " ".join(refused.output.split())
    for line, char in ((6, "U+0000"), (7, "U+202E"), (8, "U+0007")):
        assert f"record {line} field 'name': the name contains the control or direction character {char}" in out, out
    assert cli("subscribers", "import", str(path), "--skip-invalid").exit_code == 0
    with session_scope(services.sessions) as s:
        add_summaries(s, summary_record(id="plain", specialties=["cardiology"], published_at=days_before(clock(), 1)))
        issue_id = add_campaign(s, clock(), subject="Weekly picks", pinned=["plain"])
    dispatch.send_issue(services, issue_id)
    got = {r.rcpt_tos[0]: check_received(r.raw)["to"] for r in smtp_sink.received}
    assert got == {f"{key}@example.org": names[key] for key in ("encoded", "quoted", "long", "unicode")}


def test_editor_subject(services: Services, smtp_sink: SMTPSink, clock: Clock) -> None:
    from digest.issues.service import InvalidIssue

    with session_scope(services.sessions) as s:
        add_subscriber(s, "cara@example.org", ["cardiology"], name="Cara Jones", created_at=clock())
        add_summaries(s, summary_record(id="plain", specialties=["cardiology"], published_at=days_before(clock(), 1)))
    for value in (CORPUS["nul-bel-esc-del"], CORPUS["rtl-override"]):
        with (
            pytest.raises(InvalidIssue, match="the subject contains the control or direction character U\\+"),
            session_scope(services.sessions) as s,
        ):
            add_campaign(s, clock(), subject=value, pinned=["plain"])
    for value, length in ((CORPUS["long-text"], 464), ("=?utf-8?q?" + "A" * 990 + "?=", 1002)):
        with (
            pytest.raises(InvalidIssue, match=f"the subject is {length:,} characters long; the limit is 300"),
            session_scope(services.sessions) as s,
        ):
            add_campaign(s, clock(), subject=value, pinned=["plain"])
    sent = []
    for key in ("encoded-word", "bare-cr", "lf", "crlf-blank"):
        with session_scope(services.sessions) as s:
            issue_id = add_campaign(s, clock(), subject=CORPUS[key], pinned=["plain"])
        dispatch.send_issue(services, issue_id)
        sent.append(check_received(smtp_sink.received[-1].raw)["subject"])
    assert sent == [clean(CORPUS[k]) for k in ("encoded-word", "bare-cr", "lf", "crlf-blank")]


def test_1000_character_titles_are_refused_at_each_way_in_with_the_place(
    cli: Callable[..., Any],
    services: Services,
    smtp_sink: SMTPSink,
    clock: Clock,
    tmp_path: Path,
    feed_server: FeedServer,
) -> None:
    """A title past 500 characters never reaches a header: each way in refuses it, naming the field."""
    title = "=?utf-8?q?" + "A" * 990 + "?="
    record = {**_records(clock())[0], "title": title}
    from digest.web.app import create_app

    with TestClient(create_app(services)) as client:
        response = client.post("/api/summaries", json=[record], headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 422 and "title" in response.text and "500" in response.text, response.text

    path = tmp_path / "long.json"
    path.write_text(json.dumps([record]))
    imported = cli("import", str(path))
    out = " ".join(imported.output.split())
    assert imported.exit_code != 0 and "field 'title'" in out and "500" in out, out

    entry = feed_entry(0, title=title, categories=[NAMES[0]], published=clock() - timedelta(days=1))
    assert (
        cli(
            "feeds", "add", feed_server.publish("/long.json", json_feed(entry), content_type="application/feed+json")
        ).exit_code
        == 0
    )
    cli("feeds", "poll")
    with session_scope(services.sessions) as s:
        from digest.ingest.models import FeedSource, Summary

        assert "title" in (s.query(FeedSource).one().last_error or "")
        assert s.query(Summary).count() == 0
    dispatch.send_due(services, clock())
    assert smtp_sink.received == []
