"""Feeds as a summary source: fetch (conditional GET), parse, map entries to summary records, poll.

RSS and Atom are parsed by feedparser; JSON Feed (https://jsonfeed.org/version/1.1) by a small
reader here, because feedparser 6.0 has none. Every entry becomes a raw summary record that goes
through ``ingest.service.import_summaries``, so a bad entry is reported like a bad record of a file:
entry number (1-based, in feed order), field, message.

Mapping of an entry to a record:
- ``id``: the entry's guid/id (else its link), made a stable slug (scheme dropped, other characters
  folded to ``-``; too long ones end in a hash). The same guid always gives the same id, so polling a
  feed again updates summaries instead of duplicating them.
- ``key_takeaway``: the custom field (``<digest:key_takeaway>`` in the :data:`DIGEST_NS` namespace, or
  ``"_digest": {"key_takeaway": ...}`` in JSON Feed), else the first sentence of the entry's summary.
- ``specialties``: the entry's categories that name a known specialty (by slug or display name),
  else the feed source's default specialties.
- ``title``, ``summary`` (plain text), ``source_url`` (link), ``published_at`` (published, else updated).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import feedparser
import requests
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from digest import __version__
from digest.db import session_scope
from digest.errors import InputError, InvalidInput
from digest.ingest.models import FeedSource, FeedStatus
from digest.ingest.service import ImportReport, import_summaries
from digest.ingest.sources import RawRecords
from digest.ingest.specialties import specialty_map

log = logging.getLogger(__name__)

DIGEST_NS = "urn:x-digest:feed:1"
FEED_SUFFIXES = (".xml", ".rss", ".atom")
TIMEOUT = 30.0  # seconds per request
ACCEPT = (
    "application/rss+xml, application/atom+xml, application/feed+json, "
    "application/json;q=0.9, application/xml;q=0.8, */*;q=0.5"
)
MAX_ID = 200  # Summary.id length


class FeedError(Exception):
    """A feed could not be fetched or parsed; the message names the feed and the reason."""


@dataclass(frozen=True)
class Fetched:
    """One fetch. ``content`` is None when the server answered 304 Not Modified."""

    content: bytes | None
    content_type: str = ""
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.content is None


@dataclass(frozen=True)
class FeedEntry:
    """One entry in the common shape of RSS, Atom and JSON Feed; any field may be missing."""

    guid: str | None
    title: str | None
    text: str | None  # the full summary as plain text
    link: str | None
    published: str | None  # ISO 8601 where the feed's date could be read, else the raw value
    categories: tuple[str, ...] = ()
    key_takeaway: str | None = None


def is_feed_source(source: str) -> bool:
    """An http(s) URL, or a local file with a feed suffix (``.xml``, ``.rss``, ``.atom``)."""
    return source.startswith(("http://", "https://")) or Path(source).suffix.lower() in FEED_SUFFIXES


# -- fetch ------------------------------------------------------------------------------------------
def fetch(
    url: str, *, etag: str | None = None, last_modified: str | None = None, http: requests.Session | None = None
) -> Fetched:
    """GET a feed; with ``etag``/``last_modified`` the request is conditional and 304 means unchanged."""
    headers = {"User-Agent": f"digest/{__version__} (feed poller)", "Accept": ACCEPT}
    if etag:
        headers["If-None-Match"] = etag
    if last_modified:
        headers["If-Modified-Since"] = last_modified
    try:
        response = (http or requests).get(url, headers=headers, timeout=TIMEOUT)
    except requests.RequestException as exc:
        raise FeedError(f"{url}: cannot fetch: {exc}") from exc
    if response.status_code == 304:
        return Fetched(
            None,
            etag=response.headers.get("ETag", etag),
            last_modified=response.headers.get("Last-Modified", last_modified),
        )
    if response.status_code != 200:
        raise FeedError(f"{url}: HTTP {response.status_code} {response.reason}")
    return Fetched(
        response.content,
        response.headers.get("Content-Type", ""),
        response.headers.get("ETag"),
        response.headers.get("Last-Modified"),
    )


def load(source: str) -> Fetched:
    """Fetch a URL or read a local feed file (unconditionally)."""
    if source.startswith(("http://", "https://")):
        return fetch(source)
    try:
        return Fetched(Path(source).read_bytes())
    except OSError as exc:
        raise FeedError(f"{source}: cannot read file: {exc.strerror or exc}") from exc


# -- parse ------------------------------------------------------------------------------------------
def parse(fetched: Fetched, source: str) -> list[FeedEntry]:
    """The entries of an RSS, Atom or JSON Feed document, in feed order."""
    assert fetched.content is not None
    if "json" in fetched.content_type.lower() or fetched.content.lstrip()[:1] == b"{":
        return _parse_json_feed(fetched.content, source)
    # A stream, never bytes: feedparser would treat bytes that name a local file as that file.
    parsed = feedparser.parse(io.BytesIO(fetched.content))
    if not parsed.get("version"):
        reason = parsed.get("bozo_exception") or "no RSS or Atom root element"
        raise FeedError(f"{source}: not an RSS, Atom or JSON feed: {reason}")
    prefix = next((p for p, uri in parsed.namespaces.items() if uri == DIGEST_NS), None)
    return [_from_feedparser(entry, prefix) for entry in parsed.entries]


def _from_feedparser(entry: Any, prefix: str | None) -> FeedEntry:
    content = entry.get("content") or []
    body = content[0].get("value") if content else None
    summary = entry.get("summary") or body
    when = entry.get("published_parsed") or entry.get("updated_parsed")
    if when:
        year, month, day, hour, minute, second = when[:6]
        published = datetime(year, month, day, hour, minute, second, tzinfo=UTC).isoformat()
    else:
        published = entry.get("published") or entry.get("updated")
    return FeedEntry(
        guid=entry.get("id") or entry.get("link"),
        title=entry.get("title"),
        text=plain_text(body or summary),
        link=entry.get("link"),
        published=published,
        categories=tuple(t.get("term") or t.get("label") or "" for t in entry.get("tags", [])),
        key_takeaway=(entry.get(f"{prefix}_key_takeaway") if prefix else None) or first_sentence(plain_text(summary)),
    )


def _parse_json_feed(content: bytes, source: str) -> list[FeedEntry]:
    try:
        doc = json.loads(content)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FeedError(f"{source}: invalid JSON: {exc}") from exc
    if not isinstance(doc, dict) or not str(doc.get("version", "")).startswith("https://jsonfeed.org/version/"):
        raise FeedError(f"{source}: not a JSON Feed (no https://jsonfeed.org/version/ in 'version')")
    items = doc.get("items")
    if not isinstance(items, list):
        raise FeedError(f"{source}: JSON Feed without an 'items' list")
    return [_from_json_item(item if isinstance(item, dict) else {}) for item in items]


def _from_json_item(item: dict[str, Any]) -> FeedEntry:
    extension = item.get("_digest")
    if not isinstance(extension, dict):
        extension = {}
    body = plain_text(item.get("content_html")) or _str(item.get("content_text"))
    summary = _str(item.get("summary")) or body
    tags = item.get("tags")
    if not isinstance(tags, list):
        tags = []
    return FeedEntry(
        guid=_str(item.get("id")) or _str(item.get("url")),
        title=_str(item.get("title")),
        text=body or summary,
        link=_str(item.get("url")),
        published=_str(item.get("date_published")) or _str(item.get("date_modified")),
        categories=tuple(str(t) for t in tags),
        key_takeaway=_str(extension.get("key_takeaway")) or first_sentence(summary),
    )


def _str(value: object) -> str | None:
    return str(value) if value not in (None, "") else None


class _TextExtractor(HTMLParser):
    BREAKS = frozenset({"p", "br", "div", "li", "ul", "ol", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.BREAKS:
            self.parts.append(" ")

    def handle_endtag(self, tag: str) -> None:
        if tag in self.BREAKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def plain_text(html: str | None) -> str | None:
    """The text of an HTML fragment on one line (feeds put HTML in summaries), or None if empty."""
    if not html:
        return None
    extractor = _TextExtractor()
    extractor.feed(html)
    extractor.close()
    return " ".join("".join(extractor.parts).split()) or None


_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_ABBREVIATION = re.compile(r"(?:\b(?:vs|e\.g|i\.e|et al|approx|cf|fig|no|dr)|\b[A-Z])\.$", re.IGNORECASE)


def first_sentence(text: str | None) -> str | None:
    """The first sentence, not fooled by ``vs.``, ``e.g.``, ``et al.`` or an initial."""
    if not text:
        return None
    for match in _SENTENCE_END.finditer(text):
        candidate = text[: match.end()]
        if not _ABBREVIATION.search(candidate):
            return candidate.strip()
    return text.strip()


# -- map --------------------------------------------------------------------------------------------
def summary_id(guid: str) -> str:
    """A stable summary id for a feed guid: readable where possible, hashed where too long."""
    text = re.sub(r"^[a-z][a-z0-9+.-]*://", "", guid.strip(), flags=re.IGNORECASE)
    slug = re.sub(r"[^A-Za-z0-9_.:-]+", "-", text).strip("-.:")
    if slug and len(slug) <= MAX_ID:
        return slug
    tail = hashlib.sha256(guid.encode()).hexdigest()[:16]
    return f"{slug[: MAX_ID - len(tail) - 1].rstrip('-.:')}-{tail}" if slug else f"feed-{tail}"


def _slug(term: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")


def to_records(
    entries: Sequence[FeedEntry], *, default_specialties: Iterable[str], known: set[str]
) -> list[tuple[int, dict[str, Any]]]:
    """Numbered raw summary records; a later entry with an already seen guid is dropped (dedup by guid)."""
    defaults = list(default_specialties)
    records: list[tuple[int, dict[str, Any]]] = []
    seen: set[str] = set()
    for number, entry in enumerate(entries, start=1):
        record_id = summary_id(entry.guid) if entry.guid else None
        if record_id is not None:
            if record_id in seen:
                continue
            seen.add(record_id)
        matched = [s for s in dict.fromkeys(_slug(c) for c in entry.categories) if s in known]
        values = {
            "id": record_id,
            "title": entry.title,
            "key_takeaway": entry.key_takeaway,
            "specialties": matched or defaults,
            "published_at": entry.published,
            "summary": entry.text,
            "source_url": entry.link,
        }
        records.append((number, {k: v for k, v in values.items() if v is not None}))
    return records


def read_feed(session: Session, source: str, default_specialties: Iterable[str] = ()) -> RawRecords:
    """A feed URL or file as raw summary records (for ``digest import``); problems become errors."""
    out = RawRecords(source=source)
    try:
        entries = parse(load(source), source)
    except FeedError as exc:
        out.errors.append(InputError(0, "", str(exc).removeprefix(f"{source}: "), source))
        return out
    out.records = to_records(entries, default_specialties=default_specialties, known=set(specialty_map(session)))
    return out


# -- registered feeds -------------------------------------------------------------------------------
def add_feed(session: Session, url: str, specialties: Sequence[str]) -> tuple[FeedSource, bool]:
    """Register a feed (or change its default specialties); returns the row and whether it is new."""
    errors: list[InputError] = []
    if not url.startswith(("http://", "https://")):
        errors.append(InputError(1, "url", "a feed URL must start with http:// or https://", url))
    slugs = list(dict.fromkeys(s.strip().lower() for s in specialties))
    unknown = [s for s in slugs if s not in specialty_map(session)]
    if unknown:
        errors.append(InputError(1, "specialties", f"unknown specialty {', '.join(map(repr, unknown))}", url))
    if errors:
        raise InvalidInput(errors)
    row = session.scalar(select(FeedSource).where(FeedSource.url == url))
    if row is None:
        row = FeedSource(url=url, specialties=slugs, status=FeedStatus.NEW)
        session.add(row)
        session.flush()
        return row, True
    row.specialties = slugs
    return row, False


@dataclass
class PollResult:
    url: str
    status: FeedStatus
    not_modified: bool = False
    report: ImportReport | None = None
    error: str | None = None

    @property
    def imported(self) -> int:
        return self.report.created + self.report.updated if self.report else 0


def poll_feed(
    sessions: sessionmaker[Session], feed_id: int, now: datetime, http: requests.Session | None = None
) -> PollResult:
    """Poll one feed with a conditional GET; import its entries and record the outcome, in one transaction.

    The validators (ETag, Last-Modified) are stored only together with the imported summaries, so a
    failed import is fetched again next time. Invalid entries are skipped and listed in ``last_error``.
    """
    with session_scope(sessions) as session:
        feed = session.get_one(FeedSource, feed_id)
        url, etag, last_modified = feed.url, feed.etag, feed.last_modified
    try:
        fetched = fetch(url, etag=etag, last_modified=last_modified, http=http)
        entries = [] if fetched.not_modified else parse(fetched, url)
    except FeedError as exc:
        log.warning("feed poll failed: %s", exc, extra={"feed": url})
        with session_scope(sessions) as session:
            feed = session.get_one(FeedSource, feed_id)
            feed.status, feed.last_error, feed.last_polled_at = FeedStatus.ERROR, str(exc), now
        return PollResult(url, FeedStatus.ERROR, error=str(exc))
    with session_scope(sessions) as session:
        feed = session.get_one(FeedSource, feed_id)
        feed.last_polled_at = now
        if fetched.not_modified:
            if feed.status == FeedStatus.ERROR:
                feed.status, feed.last_error = FeedStatus.OK, None
            return PollResult(url, FeedStatus(feed.status), not_modified=True)
        records = to_records(entries, default_specialties=feed.specialties, known=set(specialty_map(session)))
        report = import_summaries(session, records, source=url, skip_invalid=True)
        feed.etag, feed.last_modified = fetched.etag, fetched.last_modified
        feed.status = FeedStatus.PARTIAL if report.skipped else FeedStatus.OK
        feed.last_error = "\n".join(map(str, report.skipped)) or None
        status = FeedStatus(feed.status)
    log.info(
        "feed polled: %s: %d new, %d updated, %d unchanged, %d skipped",
        url,
        report.created,
        report.updated,
        report.unchanged,
        len(report.skipped),
        extra={"feed": url, "new": report.created, "updated": report.updated, "skipped": len(report.skipped)},
    )
    return PollResult(url, status, report=report)


def poll_feeds(sessions: sessionmaker[Session], now: datetime) -> list[PollResult]:
    """Poll every registered feed, one transaction each: one feed failing does not stop the others."""
    with session_scope(sessions) as session:
        ids = list(session.scalars(select(FeedSource.id).order_by(FeedSource.id)))
    with requests.Session() as http:
        return [poll_feed(sessions, feed_id, now, http) for feed_id in ids]
