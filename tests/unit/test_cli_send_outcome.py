"""`digest send` reports what happened: planned, sent, deferred with reasons, paused; it exits 1 while
an issue is paused by a failing transport, and resumes it on a later run once a probe succeeds."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta

import pytest

from digest.config import Settings
from digest.db import make_engine, make_session_factory, session_scope, utcnow
from digest.delivery.sink import SMTPSink
from tests.conftest import on_postgresql_only
from tests.factories import add_summaries, bulk_subscribers, days_before, summary_record
from tests.unit.delivery.test_circuit import Relay

PEOPLE = [(f"reader{i}@example.org", f"Reader {i}", ["cardiology"]) for i in range(3)]


@pytest.fixture
def relay() -> Iterator[tuple[Relay, SMTPSink]]:
    handler = Relay()
    sink = SMTPSink(handler=handler)
    handler.sink = sink
    with sink:
        yield handler, sink


def test_send_reports_a_paused_issue_and_exits_1_until_the_relay_works(  # type: ignore[no-untyped-def]
    cli, settings: Settings, relay: tuple[Relay, SMTPSink], monkeypatch: pytest.MonkeyPatch
) -> None:
    handler, sink = relay
    monkeypatch.setenv("DIGEST_SMTP_URL", sink.url)
    monkeypatch.setenv("DIGEST_PROBE_FIRST_SECONDS", "1")
    engine = make_engine(settings.database_url)
    now = utcnow()
    with session_scope(make_session_factory(engine)) as s:
        add_summaries(s, summary_record(id="cardio-a", specialties=["cardiology"], published_at=days_before(now, 1)))
        bulk_subscribers(s, PEOPLE, created_at=now - timedelta(days=3))
    engine.dispose()
    handler.refuse = "554 5.7.1 <reader0@example.org>: Relay access denied"

    first = cli("send")

    assert first.exit_code == 1
    assert "3 digest(s) planned; sent=0, failed=0, cancelled=0, deferred=3" in first.output
    assert "deferred 1: 554 5.7.1 <reader0@example.org>: Relay access denied" in first.output
    assert "deferred 2: not tried yet" in first.output
    assert "is paused" in first.output and "Relay access denied" in first.output
    assert "Traceback" not in first.output

    handler.refuse = None
    time.sleep(1.1)  # DIGEST_PROBE_FIRST_SECONDS: the next run probes the relay
    second = cli("send")

    assert second.exit_code == 0, second.output
    assert "(sent): open; sent=3, failed=0, cancelled=0, deferred=0" in second.output
    assert sorted(r.rcpt_tos[0] for r in sink.received) == [p[0] for p in PEOPLE]
    assert handler.quits >= 1  # the in-process run says goodbye to the server
    assert "nothing due" in cli("send").output


@on_postgresql_only
def test_a_statement_timeout_is_told_in_one_line(  # type: ignore[no-untyped-def]
    cli, settings: Settings, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import sys

    from sqlalchemy import text

    from digest.cli import run_cli

    monkeypatch.setenv("PGOPTIONS", "-c statement_timeout=300")  # what a cautious DBA sets for the role
    monkeypatch.setattr(sys, "argv", ["digest", "send"])
    engine = make_engine(settings.database_url)
    with engine.connect() as locker:
        locker.execute(text("LOCK TABLE issues IN ACCESS EXCLUSIVE MODE"))  # a migration holds the table
        code = run_cli()
        locker.rollback()
    engine.dispose()

    stderr = capsys.readouterr().err
    assert code == 1
    assert stderr.count("\n") == 1 and "statement timeout" in stderr and "statement_timeout" in stderr
    assert "Traceback" not in stderr
