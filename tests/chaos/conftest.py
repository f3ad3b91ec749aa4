"""Fixtures of the chaos runs: PostgreSQL (required: SQLite is not a multi-worker production
database), the suite's own Redis server, and Settings pointing the test process (which plays
beat, running ``digest.dispatch.send_due`` as the planning task does) at them."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from digest.config import Settings
from tests.chaos.harness import RedisServer
from tests.conftest import PG_URL, require

# PostgreSQL only; without DIGEST_TEST_DATABASE_URL the chaos_db fixture fails in CI and skips elsewhere.
on_postgresql = pytest.mark.parametrize("database_url", ["postgresql" if PG_URL else "sqlite"], indirect=True)


@pytest.fixture
def chaos_db(clean_db: str) -> str:
    require(
        PG_URL is not None and clean_db == PG_URL,
        "PostgreSQL (DIGEST_TEST_DATABASE_URL)",
        "set DIGEST_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test_db",
    )
    return clean_db


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of this test alone, on a free port: restarting it disturbs nobody."""
    import shutil

    require(shutil.which("redis-server") is not None, "redis-server", "apt-get install redis-server")
    server = RedisServer(tmp_path / "redis")
    server.start()
    yield server
    server.stop()


def chaos_settings(
    tmp_path: Path, database_url: str, broker_url: str, smtp_url: str, *, lease_seconds: int, chunk_size: int
) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=database_url,
        broker_url=broker_url,
        smtp_url=smtp_url + "?timeout=10",
        transport="smtp",
        secret_key="chaos-secret",
        base_url="https://digest.example.org",
        from_="Evidence Digest <digest@news.example.org>",
        lease_seconds=lease_seconds,
        chunk_size=chunk_size,
    )
