"""``make smoke``: the production shape, run from the installed wheel alone.

Run by the Python of a fresh venv that holds the locked runtime dependencies and the built wheel,
nothing else (no test extras, no editable install), from a scratch folder with no ``templates/``:

1. every module of ``digest`` and ``workers``, and kombu's Redis transport, imports; the package and
   its templates come from that venv's site-packages, not from the source tree;
2. ``digest init`` on PostgreSQL, then ``digest serve``, ``digest worker`` and ``digest beat`` as
   separate processes on a Redis broker (its own database number), and a real SMTP server (aiosmtpd,
   a runtime dependency, writing to a Maildir);
3. a sign-up by HTTP, the confirmation mail, the confirm link; a digest that beat triggers; a one-click
   unsubscribe (RFC 8058) through the link in the message's header; a second cycle, with a new
   summary and a second reader, that sends the unsubscribed reader nothing;
4. no 5xx, traceback or kombu "No hostname" warning in any process's log.

Exit status 0 and a last line ``smoke: ok ...``, or 1 with the step that failed and the logs' tails.
Settings: SMOKE_DATABASE (default ``smoke``, dropped and created on the PostgreSQL at SMOKE_PG, default
``postgresql://postgres@127.0.0.1:5432/postgres``) and SMOKE_REDIS_URL (default db 9, flushed).
"""

from __future__ import annotations

import email
import email.policy
import importlib
import json
import mailbox
import os
import pkgutil
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

PG_ADMIN = os.environ.get("SMOKE_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASE = os.environ.get("SMOKE_DATABASE", "smoke")
REDIS_URL = os.environ.get("SMOKE_REDIS_URL", "redis://127.0.0.1:6379/9")
DISPATCH_SECONDS = 3  # beat's poll for due digests; production keeps the default minute
BIN = Path(sys.executable).parent
# A log line that fails the run: a traceback, a 5xx answer (digest.web.app.ServerErrorLog), kombu's warning.
BAD_LINE = re.compile(r"Traceback \(most recent call last\)| answered 5\d\d|No hostname was supplied")

T = TypeVar("T")


class SmokeFailure(Exception):
    """A step did not show what it should."""


def step(text: str) -> None:
    print(f"smoke: {text}", flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(what: str, probe: Callable[[], T | None], timeout: float = 60.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = probe()
        if value:
            return value
        time.sleep(0.25)
    raise SmokeFailure(f"timed out after {timeout:.0f} s waiting for {what}")


class Run:
    """The scratch folder, the processes started there and their logs."""

    def __init__(self, scratch: Path) -> None:
        self.scratch = scratch
        self.maildir = scratch / "maildir"
        self.smtp_port = free_port()
        self.web_port = free_port()
        self.base_url = f"http://127.0.0.1:{self.web_port}"
        self.db_url = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{DATABASE}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith(("DIGEST_", "PYTHON"))}
        self.env.update(
            DIGEST_DATABASE_URL=self.db_url,
            DIGEST_BROKER_URL=REDIS_URL,
            DIGEST_TRANSPORT="smtp",
            DIGEST_SMTP_URL=f"smtp://127.0.0.1:{self.smtp_port}",
            DIGEST_BASE_URL=self.base_url,
            DIGEST_FROM="Evidence Digest <digest@smoke.example>",
            DIGEST_DISPATCH_SECONDS=str(DISPATCH_SECONDS),
            DIGEST_LOG_LEVEL="INFO",
        )
        self.procs: dict[str, subprocess.Popen[bytes]] = {}

    def digest(self, *args: str) -> str:
        """Run one ``digest`` command to completion; its output, or a failure with it."""
        done = subprocess.run(
            [str(BIN / "digest"), *args], cwd=self.scratch, env=self.env, capture_output=True, text=True, timeout=120
        )
        output = done.stdout + done.stderr
        if done.returncode != 0 or BAD_LINE.search(output):
            raise SmokeFailure(f"`digest {' '.join(args)}` exited {done.returncode}:\n{output}")
        return output

    def start(self, name: str, *argv: str) -> None:
        log = (self.scratch / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            list(argv), cwd=self.scratch, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise SmokeFailure(f"{name} exited with status {proc.returncode}")

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for name, proc in self.procs.items():
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                step(f"{name} did not stop on SIGTERM within 20 s; killed")

    def bad_log_lines(self) -> list[str]:
        found = []
        for log in sorted(self.scratch.glob("*.log")):
            for line in log.read_text(errors="replace").splitlines():
                if BAD_LINE.search(line):
                    found.append(f"{log.name}: {line}")
        return found

    def tails(self) -> str:
        return "\n".join(
            f"--- {log.name} (last 40 lines)\n" + "\n".join(log.read_text(errors="replace").splitlines()[-40:])
            for log in sorted(self.scratch.glob("*.log"))
        )

    # -- what the SMTP server received -------------------------------------------------------------
    def messages_to(self, address: str) -> list[EmailMessage]:
        if not self.maildir.exists():
            return []
        box = mailbox.Maildir(self.maildir, factory=None, create=False)
        found = []
        for key in box.keys():  # noqa: SIM118 (iterating a Maildir yields messages, not keys)
            with box.get_file(key) as handle:
                msg = email.message_from_binary_file(handle, policy=email.policy.default)
            assert isinstance(msg, EmailMessage)
            if address in str(msg["To"]):
                found.append(msg)
        return sorted(found, key=lambda m: email.utils.parsedate_to_datetime(str(m["Date"])))

    # -- HTTP ----------------------------------------------------------------------------------------
    def http(self, method: str, url: str, form: dict[str, str | list[str]] | None = None) -> tuple[int, str]:
        data = urllib.parse.urlencode(form or {}, doseq=True).encode() if form is not None else None
        request = urllib.request.Request(url, data=data, method=method)
        if data is not None:
            request.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")

    def sql(self, statement: str, *params: object) -> None:
        """A change a day passing would make, which the smoke cannot wait for."""
        import psycopg

        with psycopg.connect(self.db_url.replace("+psycopg", ""), autocommit=True) as conn:
            conn.execute(statement, params)


def check_installed_package(scratch: Path) -> None:
    """Every runtime module imports in this venv; digest and its templates come from site-packages."""
    import digest
    import workers
    from digest.resources import template_loader

    broken = []
    for package in (digest, workers):
        for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if module.name == "digest.migrations.env":  # runs only inside Alembic
                continue
            try:
                importlib.import_module(module.name)
            except Exception as exc:
                broken.append(f"{module.name}: {type(exc).__name__}: {exc}")
    try:
        importlib.import_module("kombu.transport.redis")
    except Exception as exc:
        broken.append(f"kombu.transport.redis: {type(exc).__name__}: {exc}")
    if broken:
        raise SmokeFailure("modules that do not import with the runtime dependencies alone:\n" + "\n".join(broken))
    site = Path(sys.prefix).resolve()
    package_dir = Path(digest.__file__).resolve().parent
    if site not in package_dir.parents:
        raise SmokeFailure(f"digest was imported from {package_dir}, not from the venv at {site}")
    source, filename, _ = template_loader().get_source(None, "email/digest.html.j2")  # type: ignore[arg-type]
    if not filename or site not in Path(filename).resolve().parents or "unsubscribe" not in source:
        raise SmokeFailure(f"the email template came from {filename}, not from the installed package")
    if (scratch / "templates").exists() or Path.cwd().resolve() != scratch.resolve():
        raise SmokeFailure("the smoke must run in a scratch folder without templates/")
    step(f"{sum(1 for _ in pkgutil.walk_packages(digest.__path__))} digest modules import; templates from {filename}")


def fresh_services() -> None:
    import psycopg
    import redis

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DATABASE}"')
    redis.Redis.from_url(REDIS_URL).flushdb()


def summary(record_id: str, title: str, takeaway: str) -> dict[str, object]:
    return {
        "id": record_id,
        "title": title,
        "key_takeaway": takeaway,
        "summary": "A randomised trial, summarised for the smoke run.",
        "specialties": ["cardiology"],
        "published_at": (datetime.now(UTC) - timedelta(minutes=30)).isoformat(),
        "study": {"type": "RCT", "sample_size": 1200, "evidence_level": 2},
        "source_url": "https://example.org/study/" + record_id,
    }


def link_in(message: EmailMessage, pattern: str) -> str:
    body = message.get_body(preferencelist=("plain",))
    assert body is not None
    found = re.search(pattern, body.get_content())
    if not found:
        raise SmokeFailure(f"no link matching {pattern!r} in the message {message['Subject']!r}")
    return found.group(0)


def one_click_url(message: EmailMessage) -> str:
    header = str(message["List-Unsubscribe"])
    if str(message["List-Unsubscribe-Post"]) != "List-Unsubscribe=One-Click":
        raise SmokeFailure(f"List-Unsubscribe-Post is {message['List-Unsubscribe-Post']!r}")
    found = re.search(r"<(https?://[^>]+)>", header)
    if not found:
        raise SmokeFailure(f"no https link in List-Unsubscribe: {header!r}")
    return found.group(1)


def scenario(run: Run) -> None:
    reader, second = "reader@smoke.example", "second@smoke.example"
    step(run.digest("--version").strip())
    run.digest("init")
    (run.scratch / "first.json").write_text(json.dumps([summary("smoke-1", "First trial", "Drug A halves events.")]))
    run.digest("import", "first.json")

    run.start("smtp", str(BIN / "python"), "-m", "aiosmtpd", "-n", "-l", f"127.0.0.1:{run.smtp_port}",
              "-c", "aiosmtpd.handlers.Mailbox", str(run.maildir))  # fmt: skip
    run.start("web", str(BIN / "digest"), "serve", "--port", str(run.web_port))
    run.start("worker", str(BIN / "digest"), "worker", "--concurrency", "2")
    run.start("beat", str(BIN / "digest"), "beat")

    def healthy() -> bool:
        run.check_alive()
        try:
            status, body = run.http("GET", f"{run.base_url}/healthz")
        except OSError:
            return False
        return status == 200 and json.loads(body) == {"database": "ok", "broker": "ok"}

    wait_for("GET /healthz to answer 200 with database and broker ok", healthy)
    step("serve, worker, beat and the SMTP server are up; /healthz says database ok, broker ok")

    # Sign-up by HTTP: the form as a browser posts it (send hour 00:00 in UTC-12, so a slot has passed).
    status, page = run.http("GET", f"{run.base_url}/")
    if status != 200 or 'name="specialties"' not in page:
        raise SmokeFailure(f"GET / answered {status}")
    form = {"email": reader, "specialties": ["cardiology"], "cadence": "daily", "timezone": "Etc/GMT+12",
            "edition": "clinician", "send_hour": "0", "send_weekday": "0"}  # fmt: skip
    status, page = run.http("POST", f"{run.base_url}/subscribe", form)
    if status != 200 or "inbox" not in page.lower():
        raise SmokeFailure(f"POST /subscribe answered {status}: {page[:300]}")
    confirmation = wait_for("the confirmation mail", lambda: run.messages_to(reader), timeout=60)[0]
    confirm_url = link_in(confirmation, re.escape(run.base_url) + r"/confirm/[A-Za-z0-9._-]+")
    status, page = run.http("GET", confirm_url)
    if status != 200:
        raise SmokeFailure(f"the confirm link answered {status}")
    step(f"signed up by HTTP, confirmation mail {confirmation['Subject']!r} received, confirm link answered 200")

    # A reader confirmed just now is first due at their next slot; a day's wait becomes an UPDATE.
    run.sql("UPDATE subscribers SET confirmed_at = confirmed_at - interval '2 days', "
            "created_at = created_at - interval '2 days' WHERE email = %s", reader)  # fmt: skip
    digest_mail = wait_for("the digest that beat triggers", lambda: run.messages_to(reader)[1:], timeout=90)[0]
    text = digest_mail.get_body(preferencelist=("plain",))
    assert text is not None
    if "Drug A halves events." not in text.get_content():
        raise SmokeFailure("the digest does not carry the summary's key takeaway")
    step(f"beat triggered the digest {digest_mail['Subject']!r}")

    status, _ = run.http("POST", one_click_url(digest_mail), {"List-Unsubscribe": "One-Click"})
    if status != 200:
        raise SmokeFailure(f"the one-click unsubscribe answered {status}")
    step("one-click unsubscribe (RFC 8058) through the List-Unsubscribe header answered 200")

    # Second cycle: a new summary and a second reader. The unsubscribed reader is moved to a time zone
    # whose local date is a day later, a period not yet served: only the unsubscribe keeps them out.
    (run.scratch / "second.json").write_text(json.dumps([summary("smoke-2", "Second trial", "Drug B does not.")]))
    run.digest("import", "second.json")
    run.digest("subscribers", "add", second, "--specialty", "cardiology", "--tz", "Etc/GMT-14", "--hour", "0")
    run.sql("UPDATE subscribers SET confirmed_at = confirmed_at - interval '2 days', "
            "created_at = created_at - interval '2 days' WHERE email = %s", second)  # fmt: skip
    run.sql("UPDATE subscribers SET timezone = 'Etc/GMT-14' WHERE email = %s", reader)
    second_mail = wait_for("the second reader's digest", lambda: run.messages_to(second), timeout=90)[0]
    time.sleep(3 * DISPATCH_SECONDS)  # more beat ticks: anything for the unsubscribed reader would come now
    after = run.messages_to(reader)
    if len(after) != 2:
        raise SmokeFailure(f"the unsubscribed reader received {len(after) - 2} more message(s)")
    step(f"second cycle: {second} got {second_mail['Subject']!r}; the unsubscribed reader got nothing")
    run.check_alive()


def main() -> int:
    scratch = Path(tempfile.mkdtemp(prefix="digest-smoke-")).resolve()
    os.chdir(scratch)
    run = Run(scratch)
    try:
        check_installed_package(scratch)
        fresh_services()
        scenario(run)
    except SmokeFailure as exc:
        run.stop()
        print(run.tails(), file=sys.stderr)
        print(f"smoke: FAILED: {exc}", file=sys.stderr)
        return 1
    run.stop()
    bad = run.bad_log_lines()
    if bad:
        print(run.tails(), file=sys.stderr)
        print("smoke: FAILED: errors in the logs:\n" + "\n".join(bad), file=sys.stderr)
        return 1
    step(f"ok: the installed wheel ran the production shape end to end; logs in {scratch}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
