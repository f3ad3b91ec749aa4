"""Variant bodies shared between processes through a real Redis: rendered once, read back byte for
byte by the others, refused when forged or from another renderer, and never a condition of sending."""

from __future__ import annotations

import logging
import socket
from collections.abc import Callable
from dataclasses import replace

import pytest
import redis

from digest.issues.links import ClickLinks
from digest.rendering.compiled import EmailRenderer
from digest.rendering.marked import MarkedText
from digest.rendering.personalisation import Recipient, VariantBody
from digest.rendering.shared_bodies import RedisBodyStore
from tests.factories import SAMPLE_RECIPIENT, sample_variant

BASE_URL = "https://digest.example.org"


def _renderer(url: str, secret: str = "test-secret-key", **settings: str) -> EmailRenderer:
    """One process's renderer, as wiring builds it with Redis (digest.wiring.make_body_store)."""
    links = ClickLinks(secret, [], BASE_URL)
    return EmailRenderer(
        base_url=settings.get("base_url", BASE_URL),
        list_name=settings.get("list_name", "Clinical evidence digest"),
        link_signer=links.sign_url,
        shared=lambda fingerprint: RedisBodyStore.from_url(url, fingerprint, secret),
    )


def _store(renderer: EmailRenderer) -> RedisBodyStore:
    assert isinstance(renderer.shared, RedisBodyStore)
    return renderer.shared


def _reader(n: int) -> Recipient:
    return Recipient(f"r{n}@example.org", f"Reader {n}", f"{BASE_URL}/u/{n}", f"{BASE_URL}/p/{n}")


def test_a_variant_rendered_by_one_process_is_read_back_by_the_others_byte_for_byte(redis_url: str) -> None:
    first, second, third = (_renderer(redis_url) for _ in range(3))
    variant = sample_variant("clinician", 3)
    mine = first.render(variant, _reader(1))
    theirs = [r.render(variant, _reader(1)) for r in (second, third)]
    assert (first.passes, second.passes, third.passes) == (1, 0, 0)
    assert (_store(second).hits, _store(third).hits) == (1, 1)
    for email in theirs:
        assert (email.subject, email.html, email.text, email.encoded) == (
            mine.subject,
            mine.html,
            mine.text,
            mine.encoded,
        )
    # Each process personalises the shared body for its own readers, as a render of its own would.
    other = second.render(variant, _reader(2))
    alone = first.render_alone(variant, _reader(2))
    assert (other.html, other.text) == (alone.html, alone.text)
    assert "r2@example.org" in other.text and "r1@example.org" not in other.text


def test_each_variant_is_rendered_once_across_processes(redis_url: str) -> None:
    processes = [_renderer(redis_url) for _ in range(4)]
    variants = [sample_variant(edition, n) for edition in ("clinician", "patient") for n in (1, 2, 3)]
    for n in range(24):
        processes[n % 4].render(variants[n % len(variants)], _reader(n))
    assert sum(p.passes for p in processes) == len({v.key for v in variants}) == 6


@pytest.mark.parametrize(
    ("what", "other"),
    [
        ("another secret key (its tracked links are signed differently)", {"secret": "another-secret"}),
        ("another base URL", {"base_url": "https://news.example.net"}),
        ("another list name", {"list_name": "Cardiology weekly"}),
    ],
)
def test_a_renderer_with_other_settings_never_reads_a_body_it_would_not_render(
    redis_url: str, what: str, other: dict[str, str]
) -> None:
    ours, theirs = _renderer(redis_url), _renderer(redis_url, **other)
    assert ours.fingerprint != theirs.fingerprint, what
    variant = sample_variant("clinician", 2)
    ours.render(variant, SAMPLE_RECIPIENT)
    theirs.render(variant, SAMPLE_RECIPIENT)
    assert (ours.passes, theirs.passes) == (1, 1)


def test_a_body_written_without_the_secret_key_is_refused_and_rendered_here(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Whoever can write to Redis cannot put words in an email: the values are signed."""
    writer, reader = _renderer(redis_url), _renderer(redis_url)
    variant = sample_variant("clinician", 2)
    honest = writer.render(variant, SAMPLE_RECIPIENT)
    client = redis.Redis.from_url(redis_url)
    (name,) = client.keys(f"digest:body:*:{writer.fingerprint}:{variant.key}")
    forged = _renderer(redis_url, secret="an attacker's key")
    forged_value = _store(forged)._encode(_with_words(writer.variant_body(variant), "Stop taking your medication."))
    client.set(name, forged_value)
    with caplog.at_level(logging.WARNING, logger="digest.rendering.shared_bodies"):
        email = reader.render(variant, SAMPLE_RECIPIENT)
    assert "Stop taking your medication." not in email.html + email.text
    assert (email.html, email.text) == (honest.html, honest.text)
    assert (reader.passes, _store(reader).refused) == (1, 1)
    assert "refused" in caplog.text
    # A value cut short or garbled is refused the same way.
    value = client.get(name)
    assert isinstance(value, bytes)
    client.set(name, value[:-7])
    third = _renderer(redis_url)
    assert third.render(variant, SAMPLE_RECIPIENT).html == honest.html
    assert _store(third).refused == 1


def _with_words(body: VariantBody, words: str) -> VariantBody:
    pieces = (words + body.text.pieces[0], *body.text.pieces[1:])
    return replace(body, text=MarkedText.from_parts(pieces, body.text.fields))


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_without_redis_each_process_renders_for_itself_and_stops_asking_for_a_while(
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = f"redis://127.0.0.1:{_closed_port()}/0"
    now = [1000.0]
    renderer = _renderer(url)
    store = _store(renderer)
    store.clock = lambda: now[0]
    calls: list[str] = []
    get: Callable[..., object] = store.client.get

    def counted_get(name: str) -> object:
        calls.append(name)
        return get(name)

    store.client.get = counted_get  # type: ignore[method-assign]
    variants = [sample_variant("clinician", n) for n in (1, 2, 3)]
    with caplog.at_level(logging.WARNING, logger="digest.rendering.shared_bodies"):
        emails = [renderer.render(v, SAMPLE_RECIPIENT) for v in variants]
    assert all(e.html and e.text for e in emails)
    assert renderer.passes == 3
    assert len(calls) == 1  # one failed read, then 30 s without asking
    assert len([r for r in caplog.records if "renders its own" in r.getMessage()]) == 1
    now[0] += 31
    renderer.render(sample_variant("patient", 1), SAMPLE_RECIPIENT)
    assert len(calls) == 2
