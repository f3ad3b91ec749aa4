"""A retraction through a real ``celery worker`` (Redis broker, the test database, a real SMTP
server), driven only by the ``digest`` command: the digest goes out, the retraction is listed and
approved, and the next ``digest send`` cycle (the planning task the beat also runs) sends exactly
one notice to each reader of the summary, in their edition, and nothing more when run again."""

from __future__ import annotations

import json
import subprocess
import time
from datetime import timedelta
from pathlib import Path

import pytest
import redis

from digest.db import make_engine, make_session_factory, session_scope, utcnow
from digest.delivery.sink import SMTPSink
from tests.conftest import PG_URL
from tests.factories import add_subscriber, days_before, summary_record
from tests.integration.test_celery_worker import WAIT, _digest, _wait_idle, worker, worker_env

pytestmark = pytest.mark.integration
__all__ = ["worker", "worker_env"]  # fixtures, used by name

CLINICIANS = {"w-c1@example.org", "w-c2@example.org", "w-c3@example.org"}
PATIENTS = {"w-p1@example.org", "w-p2@example.org"}


@pytest.mark.parametrize("database_url", ["postgresql" if PG_URL else "sqlite"], indirect=True)
def test_retraction_goes_out_once_per_reader_through_the_worker(
    worker_env: dict[str, str],
    worker: subprocess.Popen[bytes],
    smtp_sink: SMTPSink,
    redis_url: str,
    tmp_path: Path,
) -> None:
    now = utcnow()
    record = summary_record(id="w-retract", specialties=["cardiology"], published_at=days_before(now, 1))
    engine = make_engine(worker_env["DIGEST_DATABASE_URL"])
    with session_scope(make_session_factory(engine)) as s:
        for email in CLINICIANS:
            add_subscriber(s, email, ["cardiology"], created_at=now - timedelta(days=3))
        for email in PATIENTS:
            add_subscriber(s, email, ["cardiology"], edition="patient", created_at=now - timedelta(days=3))
        add_subscriber(s, "w-neuro@example.org", ["neurology"], created_at=now - timedelta(days=3))
    engine.dispose()
    path = tmp_path / "summaries.json"
    path.write_text(json.dumps([record]))
    _digest(worker_env, "import", str(path))
    broker = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + WAIT

    _digest(worker_env, "send")
    _wait_idle(broker, worker, deadline)
    assert {r.rcpt_tos[0] for r in smtp_sink.received} == CLINICIANS | PATIENTS
    smtp_sink.clear()

    retraction = {**record, "status": "retracted", "correction_note": "The journal retracted the trial."}
    path.write_text(json.dumps([retraction]))
    _digest(worker_env, "import", str(path))
    (line,) = _digest(worker_env, "corrections", "list").splitlines()
    correction_id = line.split("\t")[0]
    assert "\tretraction\t" in line and "readers: 3 clinician, 2 patient" in line
    _digest(worker_env, "corrections", "approve", correction_id)

    _digest(worker_env, "send")  # one cycle: the planning task plans and queues the notices
    _wait_idle(broker, worker, deadline)
    got = {r.rcpt_tos[0]: r.message for r in smtp_sink.received}
    assert set(got) == CLINICIANS | PATIENTS and len(smtp_sink.received) == 5
    for rcpt, msg in got.items():
        assert msg["Subject"].startswith("Retraction: ")
        text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
        assert "The journal retracted the trial." in text
        assert ("has been withdrawn" if rcpt in PATIENTS else "please disregard it") in text

    smtp_sink.clear()
    _digest(worker_env, "send")
    _wait_idle(broker, worker, deadline)
    assert smtp_sink.received == []
    assert _digest(worker_env, "corrections", "list").strip() == ""
