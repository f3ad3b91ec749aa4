"""Run the real send path once: plan, queue, and let ``celery -A workers worker`` processes deliver.

What is timed, from one clock in this process:
- planning: ``plan_digests`` (the set-based selection that writes the ledger), committed;
- time to first message: from the start of planning to the first message counted by the sink;
- end to end: from the start of planning to the last message counted by the sink.
Peak RSS comes from psutil samples (every 0.2 s) of each worker process and its pool children;
statement counts from the files the workers write (workers/stats.py).
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
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import psutil
import redis
from sqlalchemy import func, select

from bench.sink import Sink
from digest.config import Settings
from digest.db import session_scope
from digest.ledger.models import Delivery, DeliveryStatus

STALL_SECONDS = 120.0  # no new message for this long: the run failed

PROJECT_ROOT = Path(__file__).resolve().parent.parent


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

    @property
    def messages_per_second(self) -> float:
        return self.received / self.end_to_end_s if self.end_to_end_s else 0.0

    @property
    def delivery_messages_per_second(self) -> float:
        """From the first message to the last: the send path without planning."""
        span = self.end_to_end_s - self.first_message_s
        return self.received / span if span > 0 else 0.0


class RSSSampler(threading.Thread):
    """Peak resident set size of every process in the given trees, sampled in the background."""

    def __init__(self, roots: list[int], every: float = 0.2):
        super().__init__(daemon=True)
        self.roots = roots
        self.every = every
        self.peak: dict[int, int] = {}
        self._halt = threading.Event()

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.every)

    def sample(self) -> None:
        for root in self.roots:
            try:
                parent = psutil.Process(root)
                procs = [parent, *parent.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
            for proc in procs:
                try:
                    rss = proc.memory_info().rss
                except psutil.NoSuchProcess:
                    continue
                self.peak[proc.pid] = max(self.peak.get(proc.pid, 0), rss)

    def stop(self) -> dict[int, float]:
        self._halt.set()
        self.join()
        return {pid: rss / 2**20 for pid, rss in sorted(self.peak.items())}


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


def read_stats(stats_dir: Path) -> tuple[int, int]:
    statements = commits = 0
    for path in stats_dir.glob("*.json"):
        data = json.loads(path.read_text())
        statements += data["statements"]
        commits += data["commits"]
    return statements, commits


def run_pipeline(
    settings: Settings,
    config: PipelineConfig,
    sink: Sink,
    now: datetime,
    progress: Callable[[int, int], None],
    workdir: Path | None = None,
) -> PipelineResult:
    """Plan the digest due at ``now`` and deliver it through real worker processes to ``sink``."""
    from digest.dispatch import dispatch_issue
    from digest.selection.service import plan_digests
    from digest.wiring import build_services
    from workers import app as worker_app

    redis.Redis.from_url(config.redis_url).flushdb()  # this benchmark's own db number: stale tasks out
    workdir = workdir or Path(tempfile.mkdtemp(prefix="digest-bench-"))
    stats_dir = workdir / "stats"
    stats_dir.mkdir(parents=True, exist_ok=True)
    worker_app.configure(settings)  # its control channel pings the workers (wait_ready)
    procs = start_workers(config, worker_env(settings, stats_dir, config.extra_env), workdir)
    sampler = RSSSampler([p.pid for p in procs])
    try:
        wait_ready(procs, config.concurrency)
        sampler.start()
        svc = build_services(settings)  # queues to the broker: the workers send
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
        last_change = time.perf_counter()  # the stall clock starts once the chunks are queued
        received = 0
        while received < plan.deliveries:
            time.sleep(0.05)  # the sink's counter moves every 50 ms (bench/sink.py); the end is late by at most ~0.1 s
            count = sink.count() - before
            now_t = time.perf_counter()
            if count != received:
                received, last_change = count, now_t
                progress(received, plan.deliveries)
            elif now_t - last_change > STALL_SECONDS:
                raise RuntimeError(f"no progress for {STALL_SECONDS:.0f} s at {received}/{plan.deliveries} messages")
        end = time.perf_counter() - t0
        first = first_seen.stop()
    finally:
        try:
            peak = sampler.stop() if sampler.is_alive() else {}
        finally:
            stop_workers(procs)
    with session_scope(svc.sessions) as session:
        sent = (
            session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.issue_id == plan.issue_id, Delivery.status == DeliveryStatus.SENT)
            )
            or 0
        )
    svc.close()
    statements, commits = read_stats(stats_dir)
    return PipelineResult(
        deliveries=plan.deliveries,
        received=received,
        sent_in_ledger=sent,
        planning_s=planning,
        dispatch_s=dispatch,
        first_message_s=first or end,
        end_to_end_s=end,
        peak_rss_mb=peak,
        statements=statements,
        commits=commits,
    )
