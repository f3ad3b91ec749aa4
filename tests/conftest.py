"""Shared fixtures: a migrated database (SQLite, and PostgreSQL where DIGEST_TEST_DATABASE_URL is set),
a real SMTP server on loopback, a local HTTP server for feeds, settings, services with a controllable
clock, and the CLI."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, text
from typer.testing import CliRunner

from digest.config import Settings, get_settings
from digest.db import make_engine, session_scope
from digest.delivery.sink import SMTPSink
from digest.ingest.specialties import seed_specialties
from digest.models import Base
from digest.schema import upgrade
from digest.wiring import Services, build_services

PG_URL = os.environ.get("DIGEST_TEST_DATABASE_URL")
REDIS_URL = os.environ.get("DIGEST_TEST_REDIS_URL")
BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])
IN_CI = bool(os.environ.get("CI"))


def require(available: bool, what: str, how: str) -> None:
    """A test that needs something this machine lacks fails in CI, and is skipped (saying how to get
    it) only on a developer machine, so that ``make test`` works on a fresh clone with only Python."""
    if available:
        return
    if IN_CI:
        pytest.fail(f"{what} is not available in CI: {how}", pytrace=False)
    pytest.skip(f"{what} is not available: {how}")


# A test of what only PostgreSQL does (pg_terminate_backend, statement_timeout, writers side by
# side): run on PostgreSQL alone; without DIGEST_TEST_DATABASE_URL it fails in CI (``require``).
on_postgresql_only = pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)


def redis_test_url() -> str | None:
    """DIGEST_TEST_REDIS_URL (its database is flushed by the tests), or None when unset."""
    return REDIS_URL


@pytest.fixture
def redis_url() -> str:
    """A flushed Redis database; a missing server fails here."""
    url = redis_test_url()
    require(url is not None, "Redis (DIGEST_TEST_REDIS_URL)", "set DIGEST_TEST_REDIS_URL=redis://127.0.0.1:6379/0")
    assert url is not None
    import redis

    redis.Redis.from_url(url).flushdb()
    return url


@pytest.fixture(scope="session", autouse=True)
def metrics_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One Prometheus multiprocess directory for the whole run, as on one host: a process writes its
    metrics to one directory for its lifetime, and worker subprocesses inherit the variable."""
    path = tmp_path_factory.mktemp("metrics")
    previous = os.environ.get("DIGEST_METRICS_DIR")
    os.environ["DIGEST_METRICS_DIR"] = str(path)
    yield path
    if previous is None:
        os.environ.pop("DIGEST_METRICS_DIR", None)
    else:
        os.environ["DIGEST_METRICS_DIR"] = previous


def _fresh_postgres(url: str) -> Engine:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    return engine


@pytest.fixture(scope="session", params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database migrated to head once per session and backend."""
    if request.param == "postgresql":
        require(bool(PG_URL), "PostgreSQL", "set DIGEST_TEST_DATABASE_URL (this test is PostgreSQL's alone)")
        assert PG_URL
        engine = _fresh_postgres(PG_URL)  # a missing server fails here: no skip
        url = PG_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
        engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture
def clean_db(database_url: str) -> str:
    """Every table emptied and the specialties seeded, before each test."""
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):
            conn.execute(table.delete())
    from sqlalchemy.orm import sessionmaker

    with session_scope(sessionmaker(engine)) as session:
        seed_specialties(session)
    engine.dispose()
    return database_url


@pytest.fixture(autouse=True)
def cheap_argon2(monkeypatch: pytest.MonkeyPatch) -> None:
    """argon2id still, at the lowest cost: the suite logs in many times and tests behaviour, not the cost."""
    from argon2 import PasswordHasher

    from digest.editors import service

    monkeypatch.setattr(service, "_hasher", PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))


class Clock:
    """A settable clock injected into services, so schedules and leases are testable."""

    def __init__(self, now: datetime):
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> datetime:
        self.now += timedelta(**delta)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime(2026, 11, 27, 12, 0, tzinfo=UTC))


@pytest.fixture
def smtp_sink() -> Iterator[SMTPSink]:
    with SMTPSink() as sink:
        yield sink


@pytest.fixture
def settings(clean_db: str, tmp_path: Path, smtp_sink: SMTPSink) -> Settings:
    return Settings(
        var_dir=tmp_path / "var",
        database_url=clean_db,
        secret_key="test-secret-key",
        base_url="https://digest.example.org",
        from_="Evidence Digest <digest@news.example.org>",
        transport="smtp",
        smtp_url=smtp_sink.url,
        broker_url=None,
        feed_allow_networks=["127.0.0.0/8"],  # the tests' feed servers listen on loopback
    )


@pytest.fixture
def services(settings: Settings, clock: Clock) -> Iterator[Services]:
    svc = build_services(settings, clock=clock)
    from workers import app as worker_app
    from workers import tasks

    worker_app.configure(settings)  # tests that call a task themselves run it in-process, with these services
    tasks.use_services(svc)
    yield svc
    tasks.use_services(None)
    svc.close()


@pytest.fixture
def cli(settings: Settings, monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    """Run ``digest ...`` in-process with the test settings in the environment."""
    from digest.cli import app

    env = {
        "DIGEST_VAR_DIR": str(settings.var_dir),
        "DIGEST_DATABASE_URL": settings.database_url,
        "DIGEST_SECRET_KEY": settings.secret_key,
        "DIGEST_BASE_URL": settings.base_url,
        "DIGEST_FROM": settings.from_,
        "DIGEST_TRANSPORT": settings.transport,
        "DIGEST_SMTP_URL": settings.smtp_url,
        "DIGEST_FEED_ALLOW_NETWORKS": ",".join(settings.feed_allow_networks),
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("DIGEST_BROKER_URL", raising=False)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    runner = CliRunner()

    def run(*args: str, input: str | None = None):
        get_settings.cache_clear()
        return runner.invoke(app, list(args), input=input, catch_exceptions=False)

    yield run
    get_settings.cache_clear()


@pytest.fixture
def web(services: Services) -> Iterator[TestClient]:
    """The web app over the test services, through FastAPI's TestClient (redirects not followed)."""
    from digest.web.app import create_app

    with TestClient(create_app(services), follow_redirects=False) as client:
        yield client


@dataclass(frozen=True)
class FeedRequest:
    path: str
    if_none_match: str | None
    if_modified_since: str | None
    status: int


class FeedServer:
    """A local HTTP server publishing feed documents, answering conditional GETs like a real one:
    304 when ``If-None-Match`` names the current ETag (or, without it, ``If-Modified-Since`` the
    current Last-Modified). Every request is recorded."""

    def __init__(self) -> None:
        self.documents: dict[str, tuple[bytes, str, str]] = {}  # path -> (body, content type, last modified)
        self.requests: list[FeedRequest] = []
        self._published = 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def publish(
        self, path: str, body: str, content_type: str = "application/rss+xml", last_modified: str | None = None
    ) -> str:
        self._published += 1  # each publication is a minute newer than the last
        stamp = last_modified or formatdate(1_795_000_000 + 60 * self._published, usegmt=True)
        self.documents[path] = (body.encode(), content_type, stamp)
        return self.url(path)

    @staticmethod
    def etag(body: bytes) -> str:
        return '"' + hashlib.sha256(body).hexdigest()[:16] + '"'

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
                doc = server.documents.get(self.path)
                if doc is None:
                    status = 404
                else:
                    body, content_type, modified = doc
                    fresh = inm == server.etag(body) if inm else ims == modified if ims else False
                    status = 304 if fresh else 200
                server.requests.append(FeedRequest(self.path, inm, ims, status))
                self.send_response(status)
                if doc is not None:
                    self.send_header("ETag", server.etag(body))
                    self.send_header("Last-Modified", modified)
                if status == 200:
                    self.send_header("Content-Type", content_type)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                return None

        return Handler

    def __enter__(self) -> FeedServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server
