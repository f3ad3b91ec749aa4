"""Feeds: fetching with conditional GET, parsing RSS/Atom/JSON Feed, mapping entries to summary records."""

from __future__ import annotations

from ipaddress import ip_network
from typing import Any

import pytest

from digest.ingest.feeds import (
    FeedError,
    Fetched,
    fetch,
    first_sentence,
    is_feed_source,
    parse,
    plain_text,
    summary_id,
    to_records,
)
from digest.ingest.fetching import FetchPolicy
from tests.conftest import FeedServer
from tests.factories import atom_feed, feed_entry, json_feed, rss_feed

LOOPBACK = FetchPolicy(allow_networks=(ip_network("127.0.0.0/8"),))  # the test feed server

KNOWN = {"cardiology", "oncology", "obstetrics-gynecology", "neurology"}


def _records(doc: str, content_type: str = "", defaults: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    entries = parse(Fetched(doc.encode(), content_type), "test-feed")
    return [r for _, r in to_records(entries, default_specialties=defaults, known=KNOWN)]


@pytest.mark.parametrize(
    ("doc", "content_type"),
    [(rss_feed, "application/rss+xml"), (atom_feed, "application/atom+xml"), (json_feed, "application/feed+json")],
)
def test_rss_atom_and_json_feed_map_to_the_same_record(doc: Any, content_type: str) -> None:
    (record,) = _records(doc(feed_entry(1)), content_type)
    assert record == {
        "id": "evidence.example.org-summaries-1",
        "title": "Trial 1 reports its primary outcome",
        "key_takeaway": "Drug 1 cut admissions by a fifth vs. placebo.",
        "specialties": ["cardiology"],
        "published_at": "2026-11-25T08:00:00+00:00",
        "summary": "Drug 1 cut admissions by a fifth vs. placebo. The trial enrolled 1,200 adults.",
        "source_url": "https://evidence.example.org/summaries/1",
    }


def test_json_feed_is_recognised_by_content_without_a_content_type() -> None:
    (record,) = _records(json_feed(feed_entry(2)))
    assert record["id"] == "evidence.example.org-summaries-2"


@pytest.mark.parametrize("doc", [rss_feed, json_feed])
def test_custom_key_takeaway_field_wins_over_the_first_sentence(doc: Any) -> None:
    (record,) = _records(doc(feed_entry(1, key_takeaway="Drug 1 lowers admissions (HR 0.80).")))
    assert record["key_takeaway"] == "Drug 1 lowers admissions (HR 0.80)."


def test_categories_naming_specialties_by_slug_or_name_win_over_defaults() -> None:
    entries = [
        feed_entry(1, categories=["Obstetrics & Gynecology", "Pregnancy", "oncology"]),
        feed_entry(2, categories=["Heart failure"]),  # names no specialty: the source's defaults apply
        feed_entry(3, categories=[]),
    ]
    records = _records(rss_feed(*entries), defaults=("neurology",))
    assert [r["specialties"] for r in records] == [["obstetrics-gynecology", "oncology"], ["neurology"], ["neurology"]]


def test_entries_are_deduplicated_by_guid_keeping_the_first() -> None:
    first = feed_entry(1, title="First version")
    again = feed_entry(1, title="Repeated later in the feed")
    entries = parse(Fetched(rss_feed(first, feed_entry(2), again).encode()), "f")
    records = to_records(entries, default_specialties=(), known=KNOWN)
    assert [(n, r["title"]) for n, r in records] == [(1, "First version"), (2, "Trial 2 reports its primary outcome")]


def test_missing_fields_are_left_out_so_validation_names_them() -> None:
    (record,) = _records(rss_feed(feed_entry(1, guid=None, link=None, published=None, description=None)))
    assert "id" not in record and "published_at" not in record and "key_takeaway" not in record


def test_summary_ids_are_stable_readable_slugs() -> None:
    assert summary_id("https://evidence.example.org/summaries/1") == "evidence.example.org-summaries-1"
    assert summary_id("tag:example.org,2026:trial/42") == "tag:example.org-2026:trial-42"
    assert summary_id("urn:uuid:3F2504E0-4F89-11D3") == "urn:uuid:3F2504E0-4F89-11D3"
    long = "https://example.org/" + "x" * 400
    assert len(summary_id(long)) == 200 and summary_id(long) == summary_id(long)
    assert summary_id(long) != summary_id(long + "y")
    assert summary_id("///").startswith("feed-")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Aspirin lowered risk. More text.", "Aspirin lowered risk."),
        ("Smith et al. found benefit in adults. Second.", "Smith et al. found benefit in adults."),
        ("HR 0.80 (95% CI 0.70-0.90), e.g. in adults! Then more.", "HR 0.80 (95% CI 0.70-0.90), e.g. in adults!"),
        ("Dr. J. Lee reports no effect", "Dr. J. Lee reports no effect"),
    ],
)
def test_first_sentence(text: str, expected: str) -> None:
    assert first_sentence(text) == expected


def test_plain_text_strips_markup_and_entities() -> None:
    assert plain_text("<p>One&nbsp;&amp; two</p><ul><li>a</li><li>b</li></ul>") == "One & two a b"
    assert plain_text("<p> </p>") is None


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"<html><body>not a feed</body></html>", "not an RSS, Atom or JSON feed"),
        (b"{not json", "invalid JSON"),
        (b'{"items": []}', "not a JSON Feed"),
    ],
)
def test_documents_that_are_not_feeds_are_refused(body: bytes, message: str) -> None:
    with pytest.raises(FeedError, match=message):
        parse(Fetched(body), "https://example.org/feed")


def test_a_body_that_names_a_local_file_is_not_read_as_that_file(tmp_path: Any) -> None:
    local = tmp_path / "secret.xml"
    local.write_text(rss_feed(feed_entry(1)))
    with pytest.raises(FeedError, match="not an RSS, Atom or JSON feed"):
        parse(Fetched(str(local).encode()), "https://example.org/feed")


def test_is_feed_source() -> None:
    assert is_feed_source("https://example.org/feed.json")
    assert is_feed_source("feeds/cardiology.RSS") and is_feed_source("x.atom") and is_feed_source("x.xml")
    assert not is_feed_source("summaries.json") and not is_feed_source("summaries.jsonl")


def test_fetch_sends_validators_and_reports_not_modified(feed_server: FeedServer) -> None:
    url = feed_server.publish("/feed.xml", rss_feed(feed_entry(1)))
    first = fetch(url, policy=LOOPBACK)
    assert first.content and first.etag and first.last_modified and "rss" in first.content_type

    again = fetch(url, etag=first.etag, last_modified=first.last_modified, policy=LOOPBACK)
    assert again.not_modified and again.etag == first.etag
    assert feed_server.requests[-1].if_none_match == first.etag
    assert feed_server.requests[-1].if_modified_since == first.last_modified

    feed_server.publish("/feed.xml", rss_feed(feed_entry(1), feed_entry(2)))
    changed = fetch(url, etag=first.etag, last_modified=first.last_modified, policy=LOOPBACK)
    assert changed.content and changed.etag != first.etag
    assert [r.status for r in feed_server.requests] == [200, 304, 200]


def test_fetch_errors_name_the_url(feed_server: FeedServer) -> None:
    missing = feed_server.url("/nope.xml")
    with pytest.raises(FeedError, match=f"{missing}: HTTP 404"):
        fetch(missing, policy=LOOPBACK)
    with pytest.raises(FeedError, match="cannot fetch"):
        fetch("http://127.0.0.1:9/feed.xml", policy=LOOPBACK)
