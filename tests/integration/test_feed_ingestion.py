"""Feeds end to end: `digest feeds add/poll/list`, `digest import URL`, and the beat task, against a
feed served by a local HTTP server and the real database."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from digest.db import session_scope
from digest.ingest.models import FeedSource, FeedStatus, Summary
from digest.wiring import Services
from tests.conftest import FeedServer
from tests.factories import atom_feed, feed_entry, json_feed, rss_feed
from workers import app as worker_app
from workers import tasks


def _out(result: Any) -> str:
    """The command's output on one line (the console wraps long lines)."""
    return " ".join(result.output.split())


def _summaries(services: Services) -> dict[str, tuple[str, list[str], datetime]]:
    with session_scope(services.sessions) as s:
        return {
            x.id: (x.key_takeaway, [sp.slug for sp in x.specialties], x.updated_at) for x in s.scalars(select(Summary))
        }


def _feed(services: Services) -> FeedSource:
    with session_scope(services.sessions) as s:
        return s.scalars(select(FeedSource)).one()


def test_poll_imports_then_304_imports_nothing_then_only_what_is_new(
    cli: Any, services: Services, feed_server: FeedServer
) -> None:
    url = feed_server.publish(
        "/cardiology.xml",
        rss_feed(
            feed_entry(1), feed_entry(2, categories=["Oncology"], key_takeaway="Drug 2 extends survival (HR 0.75).")
        ),
    )
    added = cli("feeds", "add", url, "--specialty", "cardiology")
    assert added.exit_code == 0, added.output
    assert "added feed" in _out(added) and f"{url} (cardiology)" in _out(added)

    first = cli("feeds", "poll")
    assert first.exit_code == 0, first.output
    assert f"{url}: 2 new, 0 updated, 0 unchanged" in _out(first)
    stored = _summaries(services)
    assert stored["evidence.example.org-summaries-1"][:2] == (
        "Drug 1 cut admissions by a fifth vs. placebo.",
        ["cardiology"],
    )
    assert stored["evidence.example.org-summaries-2"][:2] == ("Drug 2 extends survival (HR 0.75).", ["oncology"])
    feed = _feed(services)
    assert feed.status == FeedStatus.OK and feed.etag and feed.last_modified and feed.last_polled_at is not None

    # Second poll: the server answers 304 to the validators we stored; nothing is imported or touched.
    second = cli("feeds", "poll")
    assert second.exit_code == 0, second.output
    assert f"{url}: not modified" in _out(second)
    assert feed_server.requests[-1].status == 304 and feed_server.requests[-1].if_none_match == feed.etag
    assert _summaries(services) == stored

    # The feed gains an entry: only that one is new; the others are recognised by guid.
    feed_server.publish(
        "/cardiology.xml",
        rss_feed(
            feed_entry(3),
            feed_entry(1),
            feed_entry(2, categories=["Oncology"], key_takeaway="Drug 2 extends survival (HR 0.75)."),
        ),
    )
    third = cli("feeds", "poll")
    assert f"{url}: 1 new, 0 updated, 2 unchanged" in _out(third)
    assert set(_summaries(services)) == set(stored) | {"evidence.example.org-summaries-3"}


def test_invalid_entries_are_skipped_when_polling_and_listed(
    cli: Any, services: Services, feed_server: FeedServer
) -> None:
    url = feed_server.publish(
        "/mixed.xml", rss_feed(feed_entry(1), feed_entry(2, published=None), feed_entry(3, description=None))
    )
    cli("feeds", "add", url, "-s", "cardiology")
    result = cli("feeds", "poll")
    assert result.exit_code == 0, result.output
    assert f"{url}: 1 new, 0 updated, 0 unchanged, 2 invalid skipped" in _out(result)
    assert f"{url}: record 2 field 'published_at': Field required" in _out(result)
    assert f"{url}: record 3 field 'key_takeaway': Field required" in _out(result)
    feed = _feed(services)
    assert feed.status == FeedStatus.PARTIAL and feed.last_error and "record 2 field 'published_at'" in feed.last_error
    listing = cli("feeds", "list")
    assert "partial" in _out(listing) and "record 2 field 'published_at'" in _out(listing)


def test_a_failing_feed_is_recorded_and_does_not_stop_the_others(
    cli: Any, services: Services, feed_server: FeedServer
) -> None:
    broken = feed_server.url("/gone.xml")
    good = feed_server.publish("/good.json", json_feed(feed_entry(1)), content_type="application/feed+json")
    cli("feeds", "add", broken, "-s", "cardiology")
    cli("feeds", "add", good, "-s", "cardiology")
    result = cli("feeds", "poll")
    assert result.exit_code == 1
    assert f"{broken}: failed: {broken}: HTTP 404 Not Found" in _out(result)
    assert f"{good}: 1 new" in _out(result)
    with session_scope(services.sessions) as s:
        statuses = dict(s.execute(select(FeedSource.url, FeedSource.status)).all())
    assert statuses == {broken: FeedStatus.ERROR, good: FeedStatus.OK}


def test_feeds_add_rejects_unknown_specialties_and_non_http_urls(cli: Any, services: Services) -> None:
    result = cli("feeds", "add", "ftp://example.org/feed", "-s", "cardiology", "-s", "astrology")
    assert result.exit_code == 2
    assert "field 'url': a feed URL must start with http:// or https://" in _out(result)
    assert "field 'specialties': unknown specialty 'astrology'" in _out(result)
    with session_scope(services.sessions) as s:
        assert s.scalar(select(func.count()).select_from(FeedSource)) == 0


def test_import_url_rejects_invalid_entries_whole_unless_told_to_skip(
    cli: Any, services: Services, feed_server: FeedServer
) -> None:
    url = feed_server.publish(
        "/atom.xml", atom_feed(feed_entry(1), feed_entry(2, categories=["Astrology"])), "application/atom+xml"
    )
    rejected = cli("import", url)
    assert rejected.exit_code == 2
    assert f"{url}: record 2 field 'specialties': List should have at least 1 item" in _out(rejected)
    assert _summaries(services) == {}

    imported = cli("import", url, "--skip-invalid")
    assert imported.exit_code == 0 and f"imported 1 summaries from {url}: 1 new" in _out(imported)

    with_default = cli("import", url, "--specialty", "neurology")
    assert with_default.exit_code == 0, with_default.output
    assert _summaries(services)["evidence.example.org-summaries-2"][1] == ["neurology"]


def test_import_local_feed_file_and_unreadable_feeds(cli: Any, services: Services, tmp_path: Path) -> None:
    path = tmp_path / "summaries.rss"
    path.write_text(rss_feed(feed_entry(7)))
    assert cli("import", str(path)).exit_code == 0
    assert "evidence.example.org-summaries-7" in _summaries(services)

    junk = tmp_path / "junk.xml"
    junk.write_text("<html>not a feed</html>")
    result = cli("import", str(junk))
    assert result.exit_code == 2 and f"{junk}: record 0: not an RSS, Atom or JSON feed" in _out(result)
    assert cli("import", str(tmp_path / "s.json"), "--specialty", "neurology").exit_code == 2


def test_beat_polls_feeds_every_15_minutes(services: Services, feed_server: FeedServer) -> None:
    schedule = worker_app.celery_app.conf.beat_schedule["poll-feeds"]
    assert schedule == {"task": "workers.tasks.poll_feeds", "schedule": 900.0}

    url = feed_server.publish("/beat.xml", rss_feed(feed_entry(1), feed_entry(2)))
    from digest.ingest.feeds import add_feed

    with session_scope(services.sessions) as s:
        add_feed(s, url, ["cardiology"])
    assert tasks.poll_feeds.delay().get() == {"feeds": 1, "not_modified": 0, "failed": 0, "imported": 2}
    assert tasks.poll_feeds.delay().get() == {"feeds": 1, "not_modified": 1, "failed": 0, "imported": 0}
