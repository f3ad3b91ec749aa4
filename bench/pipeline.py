"""Run the real send path once: plan, queue, and let ``celery -A workers worker`` processes deliver.

What is timed, from one clock in this process:
- planning: ``plan_digests`` (the set-based selection that writes the ledger), committed;
- time to first message: from the start of planning to the first message counted by the sink;
- end to end: from the start of planning to the last message counted by the sink.
Peak RSS and CPU time come from psutil samples (every 0.2 s) of each worker process and its pool
children, of the PostgreSQL backends, the sink and the web server (bench/measure.py); WAL and
database size from PostgreSQL before planning and after the last message; statement counts from
the files the workers write (workers/stats.py). With a ``LoadSpec``, readers unsubscribe through
the served app during the send (bench/unsubscribe.py), and the send is over when every message
that was not cancelled by an unsubscribe has arrived.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil
import redis
from sqlalchemy import func, literal_column, select
from sqlalchemy.orm import Session

from bench.measure import GroupUsage, PostgresProbe, ProcessSampler, tree
from bench.sink import Sink
from bench.unsubscribe import LoadResult, UnsubscribeLoad, served_app
from digest.config import Settings
from digest.db import session_scope
from digest.ledger.models import Delivery
from digest.subscribers.models import Subscriber, SubscriberStatus
from digest.subscribers.tokens import Purpose
from digest.wiring import Services

STALL_SECONDS = 120.0  # no new message for this long: the run failed
# ``unsubscribed_at`` is read by the web process before its statement waits for a batch that holds the
# reader's row; that batch's ``sent_at`` (read by the worker before it took the rows) may then be later,
# although the message went out before the unsubscribe committed, as the lifecycle allows. A message
# sent more than this after the unsubscribe's timestamp was sent after it.
UNSUBSCRIBE_CLOCK_SLACK = "interval '1 second'"  # PostgreSQL (the benchmark's database)

PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class LoadSpec:
    """Readers who unsubscribe (one-click, through ``digest serve``) during the send, at ``rate`` per second."""

    readers: int
    rate: float = 50.0
    clients: int = 4


@dataclass(frozen=True)
class PipelineConfig:
    database_url: str
    redis_url: str
    workers: int = 1
    concurrency: int = 4
    chunk_size: int = 250
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def connections(self) -> int:
        """SMTP connections in use: one per worker pool process."""
        return self.workers * self.concurrency


@dataclass
class PipelineResult:
    deliveries: int
    received: int
    sent_in_ledger: int
    planning_s: float
    dispatch_s: float
    first_message_s: float
    end_to_end_s: float
    peak_rss_mb: dict[int, float]
    statements: int
    commits: int
    variant_renders: int  # bodies the worker processes rendered themselves (the rest were shared)
    variants: int  # distinct variants the issue's sent messages carried
    usage: dict[str, GroupUsage]
    wal_bytes: int
    database_bytes_before: int
    database_bytes_after: int
    unsubscribe: LoadResult | None
    cancelled_in_ledger: int
    pending_in_ledger: int
    unsubscribed: int
    sent_after_unsubscribe: int

    @property
    def messages_per_second(self) -> float:
        return self.received / self.end_to_end_s if self.end_to_end_s else 0.0

    @property
    def delivery_messages_per_second(self) -> float:
        """From the first message to the last: the send path without planning."""
        span = self.end_to_end_s - self.first_message_s
        return self.received / span if span > 0 else 0.0


class _FirstMessage(threading.Thread):
    """Seconds from ``t0`` to the first message the sink counts after ``before``, polled every 5 ms."""

    def __init__(self, sink: Sink, before: int, t0: float):
        super().__init__(daemon=True)
        self.sink, self.before, self.t0 = sink, before, t0
        self.at: float | None = None
        self._halt = threading.Event()

    def start(self) -> _FirstMessage:  # type: ignore[override]
        super().start()
        return self

    def run(self) -> None:
        while not self._halt.is_set():
            if self.sink.count() > self.before:
                self.at = time.perf_counter() - self.t0
                return
            self._halt.wait(0.005)

    def stop(self) -> float | None:
        self._halt.set()
        self.join()
        return self.at


def worker_env(settings: Settings, stats_dir: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DIGEST_")}
    env.update(
        DIGEST_DATABASE_URL=settings.database_url,
        DIGEST_BROKER_URL=settings.broker_url or "",
        DIGEST_TRANSPORT="smtp",
        DIGEST_SMTP_URL=settings.smtp_url,
        DIGEST_SECRET_KEY=settings.secret_key,
        DIGEST_BASE_URL=settings.base_url,
        DIGEST_VAR_DIR=str(settings.var_dir),
        DIGEST_CHUNK_SIZE=str(settings.chunk_size),
        DIGEST_BENCH_STATS_DIR=str(stats_dir),
        PYTHONPATH=str(PROJECT_ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.update(extra)
    return env


def start_workers(config: PipelineConfig, env: dict[str, str], log_dir: Path) -> list[subprocess.Popen[bytes]]:
    procs = []
    for n in range(config.workers):
        cmd = [
            sys.executable, "-m", "celery", "-A", "workers", "worker",
            "--pool", "prefork", "--concurrency", str(config.concurrency),
            "-n", f"bench{n}-{os.getpid()}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "WARNING",
        ]  # fmt: skip
        log = open(log_dir / f"worker{n}.log", "wb")  # noqa: SIM115 (the worker writes to it until stopped)
        procs.append(subprocess.Popen(cmd, env=env, cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT))
    return procs


def wait_ready(procs: list[subprocess.Popen[bytes]], concurrency: int, timeout: float = 60.0) -> None:
    """Ready when every worker has its pool children and answers a ping."""
    from workers.app import celery_app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError(f"celery worker exited with status {p.returncode} during start-up (see its log)")
        children = [len(psutil.Process(p.pid).children()) for p in procs]
        if all(c >= concurrency for c in children) and len(celery_app.control.ping(timeout=1.0)) >= len(procs):
            return
        time.sleep(0.2)
    raise RuntimeError(f"celery workers not ready after {timeout:.0f} s")


def stop_workers(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()  # warm shutdown: finish the current task
    for p in procs:
        try:
            p.wait(30)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def read_stats(stats_dir: Path) -> dict[str, int]:
    """The worker processes' totals: statements, commits, variant renders."""
    totals = {"statements": 0, "commits": 0, "renders": 0}
    for path in stats_dir.glob("*.json"):
        data = json.loads(path.read_text())
        for name in totals:
            totals[name] += data[name]
    return totals


def run_pipeline(
    settings: Settings,
    config: PipelineConfig,
    sink: Sink,
    now: datetime,
    progress: Callable[[int, int], None],
    workdir: Path | None = None,
    load: LoadSpec | None = None,
) -> PipelineResult:
    """Plan the digest due at ``now`` and deliver it through real worker processes to ``sink``;
    with ``load``, readers unsubscribe (one-click, through the served app) while it is sent."""
    from digest.dispatch import dispatch_issue
    from digest.selection.service import plan_digests
    from digest.wiring import build_services
    from workers import app as worker_app

    redis.Redis.from_url(config.redis_url).flushdb()  # this benchmark's own db number: stale tasks out
    workdir = workdir or Path(tempfile.mkdtemp(prefix="digest-bench-"))
    stats_dir = workdir / "stats"
    stats_dir.mkdir(parents=True, exist_ok=True)
    worker_app.configure(settings)  # its control channel pings the workers (wait_ready)
    env = worker_env(settings, stats_dir, config.extra_env)
    probe = PostgresProbe(settings.database_url)
    svc = build_services(settings)  # queues to the broker: the workers send
    with ExitStack() as stack:
        stack.callback(svc.close)
        stack.callback(probe.close)
        procs = start_workers(config, env, workdir)
        stack.callback(stop_workers, procs)
        groups = {"workers": tree([p.pid for p in procs]), "postgres": probe.backends}
        groups["sink"] = tree([sink.pid] if sink.pid else [])
        unsubscribing: UnsubscribeLoad | None = None
        leaving: list[int] = []
        if load is not None and load.readers > 0:
            base_url, web_pid = stack.enter_context(served_app({**env, "DIGEST_WEB_WORKERS": "1"}, workdir))
            groups["web"] = tree([web_pid])
            leaving = _leaving(svc, load.readers)
            tokens = [svc.tokens.make(Purpose.UNSUBSCRIBE, sid) for sid in leaving]
            unsubscribing = UnsubscribeLoad(base_url, tokens, load.rate, load.clients)
            stack.callback(unsubscribing.close)
        wait_ready(procs, config.concurrency)
        sampler = ProcessSampler(groups, fresh=("postgres",))
        sampler.start()
        stack.callback(lambda: sampler.is_alive() and sampler.stop())
        wal_before, db_before = probe.wal_bytes(), probe.database_bytes()
        before = sink.count()
        t0 = time.perf_counter()
        with session_scope(svc.sessions) as session:
            plan = plan_digests(session, now, svc.plan_options())
        planning = time.perf_counter() - t0
        if plan.issue_id is None:
            raise RuntimeError("nothing was due: the generated list planned no deliveries")
        # Workers send while the chunks are still being queued: the first message is watched for
        # from here, not from the end of dispatch (which would leave those messages' time out of
        # the send phase).
        first_seen = _FirstMessage(sink, before, t0).start()
        dispatch_issue(svc, plan.issue_id)
        dispatch = time.perf_counter() - t0 - planning
        received, last_change = _follow(svc, plan.issue_id, plan.deliveries, sink, before, progress, unsubscribing)
        end = last_change - t0
        first = first_seen.stop()
        usage = sampler.stop()
        wal_after, db_after = probe.wal_bytes(), probe.database_bytes()
        answered = unsubscribing.result() if unsubscribing is not None else None
        with session_scope(svc.sessions) as session:
            ledger = _ledger_counts(session, plan.issue_id, leaving)
            variants = _variants_sent(session, plan.issue_id)
    stats = read_stats(stats_dir)
    return PipelineResult(
        deliveries=plan.deliveries,
        received=received,
        sent_in_ledger=ledger["sent"],
        planning_s=planning,
        dispatch_s=dispatch,
        first_message_s=first or end,
        end_to_end_s=end,
        peak_rss_mb=usage["workers"].peak_rss_mb,
        statements=stats["statements"],
        commits=stats["commits"],
        variant_renders=stats["renders"],
        variants=variants,
        usage=usage,
        wal_bytes=wal_after - wal_before,
        database_bytes_before=db_before,
        database_bytes_after=db_after,
        unsubscribe=answered,
        cancelled_in_ledger=ledger["cancelled"],
        pending_in_ledger=ledger["pending"],
        unsubscribed=ledger["unsubscribed"],
        sent_after_unsubscribe=ledger["sent_after_unsubscribe"],
    )


def _leaving(svc: Services, readers: int) -> list[int]:
    """``readers`` active subscribers spread evenly over the list (so over the whole send)."""
    active = Subscriber.status == SubscriberStatus.ACTIVE
    with session_scope(svc.sessions) as session:
        step = max(1, (session.scalar(select(func.count()).select_from(Subscriber).where(active)) or 0) // readers)
        return list(
            session.scalars(
                select(Subscriber.id).where(active, Subscriber.id % step == 0).order_by(Subscriber.id).limit(readers)
            )
        )


def _follow(
    svc: Services,
    issue_id: int,
    planned: int,
    sink: Sink,
    before: int,
    progress: Callable[[int, int], None],
    load: UnsubscribeLoad | None,
) -> tuple[int, float]:
    """Follow the send to its end: (messages the sink received, when the last one arrived).

    Without unsubscribes the send is over when every planned message arrived. With them, a reader
    who unsubscribed before their message went out has it cancelled instead: the send is over when
    the unsubscribes are done, the ledger has no pending row and the sink has every message not
    cancelled (asked of the ledger at most twice a second, and only near the end).
    """
    received, last_change, asked = 0, time.perf_counter(), 0.0
    expected = planned
    while True:
        time.sleep(0.05)  # the sink's counter moves every 50 ms (bench/sink.py); the end is late by at most ~0.1 s
        count = sink.count() - before
        now_t = time.perf_counter()
        if count != received:
            received, last_change = count, now_t
            progress(received, planned)
            if load is not None and load.idle:
                load.start()  # the send is under way
        elif now_t - last_change > STALL_SECONDS:
            raise RuntimeError(f"no progress for {STALL_SECONDS:.0f} s at {received}/{planned} messages")
        if load is None:
            if received >= planned:
                return received, last_change
            continue
        if load.done and received >= planned - load.requests and now_t - asked > 0.5:
            asked = now_t
            with session_scope(svc.sessions) as session:
                counts = _ledger_counts(session, issue_id, [])
            expected = planned - counts["cancelled"]
            if counts["pending"] == 0 and received >= expected:
                return received, last_change


def _variants_sent(session: Session, issue_id: int) -> int:
    """How many distinct variants the issue's sent messages carried."""
    sent = (Delivery.issue_id == issue_id, Delivery.status == "sent")
    return session.scalar(select(func.count(func.distinct(Delivery.variant_key))).where(*sent)) or 0


def _ledger_counts(session: Session, issue_id: int, leaving: list[int]) -> dict[str, int]:
    """The issue's rows by status; of ``leaving``, how many ended unsubscribed, and how many
    messages went out after their reader had unsubscribed (must be none)."""
    by_status = dict(
        session.execute(
            select(Delivery.status, func.count()).where(Delivery.issue_id == issue_id).group_by(Delivery.status)
        ).all()
    )
    out = {status: int(by_status.get(status, 0)) for status in ("sent", "pending", "cancelled", "failed")}
    out["unsubscribed"] = out["sent_after_unsubscribe"] = 0
    if leaving:
        gone = (Subscriber.id.in_(leaving), Subscriber.status == SubscriberStatus.UNSUBSCRIBED)
        out["unsubscribed"] = session.scalar(select(func.count()).select_from(Subscriber).where(*gone)) or 0
        out["sent_after_unsubscribe"] = (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .join(Subscriber, Subscriber.id == Delivery.subscriber_id)
                .where(
                    Delivery.issue_id == issue_id,
                    Delivery.sent_at > Subscriber.unsubscribed_at + literal_column(UNSUBSCRIBE_CLOCK_SLACK),
                    *gone,
                )
            )
            or 0
        )
    return out
