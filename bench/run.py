"""One benchmark run: generate the list, run the pipeline, measure the baselines, assemble the result."""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from sqlalchemy import Engine

from bench.baselines import naive_render, smtp_source
from bench.data import ListSpec, generate, reset_schema
from bench.history import HistorySpec, generate_history
from bench.pipeline import LoadSpec, PipelineConfig, PipelineResult, run_pipeline
from bench.sink import Sink
from digest.config import Settings
from digest.db import make_engine
from digest.wiring import build_services


@dataclass(frozen=True)
class RunOptions:
    spec: ListSpec
    pipeline: PipelineConfig
    naive_sample: int = 100
    baselines: bool = True
    schema: str = "public"
    ledger_days: int = 0  # days of daily-digest history written before the run (bench/history.py)
    unsubscribes: LoadSpec | None = None  # readers who unsubscribe during the send (bench/unsubscribe.py)


def bench_settings(config: PipelineConfig, sink: Sink, var_dir: Path) -> Settings:
    return Settings(
        database_url=config.database_url,
        broker_url=config.redis_url,
        transport="smtp",
        smtp_url=f"smtp://127.0.0.1:{sink.port}",
        secret_key="bench-secret-key",
        base_url="https://digest.example.org",
        var_dir=var_dir,
        chunk_size=config.chunk_size,
    )


def progress_bar(console: Console) -> Progress:
    """The one live display of a run (or of a whole matrix): one line per phase under way."""
    return Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@contextmanager
def phase(bar: Progress, description: str, total: int | None = None) -> Iterator[TaskID]:
    """A line on ``bar`` while the phase runs."""
    task = bar.add_task(description, total=total, rate="")
    try:
        yield task
    finally:
        bar.remove_task(task)


def run_once(console: Console, options: RunOptions, sink: Sink, bar: Progress | None = None) -> dict[str, Any]:
    """Generate ``options.spec`` and send it; with ``baselines``, measure (a) and (b) too. Phases
    show on ``bar`` (the matrix's), or on a display of the run's own."""
    if bar is None:
        with progress_bar(console) as own:
            return run_once(console, options, sink, own)
    config = options.pipeline
    now = datetime.now(UTC).replace(microsecond=0)
    engine = make_engine(config.database_url)
    with phase(bar, f"generating {options.spec.subscribers:,} subscribers, {options.spec.summaries} summaries"):
        reset_schema(engine, options.schema)
        generate(engine, options.spec, now)
    history = _history(console, bar, engine, options, now)
    engine.dispose()
    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    settings = bench_settings(config, sink, workdir / "var")
    with phase(bar, f"[bold]{options.spec.subscribers:,}[/bold] sending") as task:
        started = time.perf_counter()

        def progress(done: int, total: int) -> None:
            elapsed = time.perf_counter() - started
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f} msg/s" if elapsed else "")

        result = run_pipeline(settings, config, sink, now, progress, workdir, options.unsubscribes)
    out: dict[str, Any] = {
        "subscribers": options.spec.subscribers,
        "specialties": options.spec.specialties,
        "ledger_days": options.ledger_days,
        "history": history,
        "summaries": options.spec.summaries,
        "messages": result.received,
        "deliveries_planned": result.deliveries,
        "sent_in_ledger": result.sent_in_ledger,
        "cancelled_in_ledger": result.cancelled_in_ledger,
        "all_delivered": all_delivered(result),
        "messages_per_second": result.messages_per_second,
        "delivery_messages_per_second": result.delivery_messages_per_second,
        "time_to_first_message_s": result.first_message_s,
        "planning_s": result.planning_s,
        "dispatch_s": result.dispatch_s,
        "end_to_end_s": result.end_to_end_s,
        "peak_rss_mb_max": max(result.peak_rss_mb.values(), default=0.0),
        "peak_rss_mb_per_process": {str(pid): round(mb, 1) for pid, mb in result.peak_rss_mb.items()},
        **resources(result),
        "db_statements_per_message": result.statements / max(1, result.received),
        "db_commits_per_message": result.commits / max(1, result.received),
        "variants": result.variants,
        "variant_renders": result.variant_renders,
        "db_count_method": (
            "SQLAlchemy before_cursor_execute/commit listeners in every worker process (workers/stats.py)"
        ),
        "sink": sink.kind,
        "workers": config.workers,
        "concurrency": config.concurrency,
        "connections": config.connections,
        "chunk_size": config.chunk_size,
        "smtp_batch_size": int(config.extra_env.get("DIGEST_SMTP_BATCH_SIZE", "1")),
        "smtp_source": None,
        "naive": None,
        "naive_cached_stylesheet": None,
        "ratio_to_smtp_source": None,
        "ratio_to_naive": None,
        "ratio_to_naive_cached_stylesheet": None,
    }
    if options.baselines:
        services = build_services(settings)
        try:
            with phase(bar, f"baseline (b): naive render+premailer for {options.naive_sample} messages, best of 3"):
                issue_id = _last_issue(services)
                processes = min(config.connections, os.cpu_count() or 1)
                naive = naive_render(services, issue_id, sample=options.naive_sample, processes=processes)
                cached = naive_render(
                    services, issue_id, sample=options.naive_sample, processes=processes, stylesheet_cache=True
                )
        finally:
            services.close()
        for key, baseline in (("naive", naive), ("naive_cached_stylesheet", cached)):
            out[key] = {**baseline.__dict__, "messages_per_second": baseline.messages_per_second}
            out[f"ratio_to_{key}"] = out["messages_per_second"] / baseline.messages_per_second
        with phase(
            bar, f"baseline (a): smtp-source, {result.received:,} messages of {naive.mean_message_bytes:,} bytes"
        ):
            source = smtp_source(
                sink, messages=result.received, size=naive.mean_message_bytes, sessions=config.connections
            )
        if source is not None:
            out["smtp_source"] = {**source.__dict__, "messages_per_second": source.messages_per_second}
            out["ratio_to_smtp_source"] = out["messages_per_second"] / source.messages_per_second
    return out


def all_delivered(result: PipelineResult) -> bool:
    """Every planned message reached the sink and is sent in the ledger, except those cancelled
    because their reader unsubscribed first; no message went out after its reader unsubscribed,
    and every unsubscribe was answered and recorded."""
    answered = result.unsubscribe
    accounted = result.received == result.sent_in_ledger and result.pending_in_ledger == 0
    accounted &= result.sent_in_ledger + result.cancelled_in_ledger == result.deliveries
    if answered is None:
        return accounted and result.cancelled_in_ledger == 0
    return (
        accounted
        and result.cancelled_in_ledger <= result.unsubscribed == answered.requests == len(answered.latencies_ms)
        and not answered.failures
        and result.sent_after_unsubscribe == 0
    )


def resources(result: PipelineResult) -> dict[str, Any]:
    """Memory, CPU per message by component, WAL and database size, and the unsubscribes of the run."""
    messages = max(1, result.received)
    usage = result.usage
    postgres = usage["postgres"]
    unsubscribe = None
    if result.unsubscribe is not None:
        unsubscribe = {
            **result.unsubscribe.summary(),
            "unsubscribed": result.unsubscribed,
            "cancelled": result.cancelled_in_ledger,
            "sent_after_unsubscribe": result.sent_after_unsubscribe,
        }
    return {
        "unsubscribe_p99_ms": unsubscribe["p99_ms"] if unsubscribe else None,
        "unsubscribe": unsubscribe,
        "postgres_rss_mb_max": round(postgres.peak_rss_mb_max, 1),
        "postgres_rss_mb_sum": round(postgres.peak_rss_mb_sum, 1),
        "postgres_backends": len(postgres.peak_rss_mb),
        "database_bytes": result.database_bytes_after,
        "database_bytes_before": result.database_bytes_before,
        "wal_bytes": result.wal_bytes,
        "wal_bytes_per_message": result.wal_bytes / messages,
        "wal_scope": "cluster (pg_current_wal_lsn): this run's only when nothing else writes to the cluster",
        "cpu_s": {name: round(u.cpu_s, 3) for name, u in usage.items()},
        "cpu_us_per_message": {name: round(u.cpu_s / messages * 1e6, 1) for name, u in usage.items()},
        "cpu_method": "psutil user+system CPU time of each component's processes over planning and the send "
        "(bench/measure.py); postgres: the client backends of the benchmark database",
    }


def _history(
    console: Console, bar: Progress, engine: Engine, options: RunOptions, now: datetime
) -> dict[str, Any] | None:
    """Write ``options.ledger_days`` days of history; what was written, and how fast."""
    if options.ledger_days <= 0:
        return None
    with phase(bar, f"[bold]{options.ledger_days}[/bold] days of history", total=options.ledger_days) as task:
        written = generate_history(
            engine, HistorySpec(options.ledger_days), now, lambda done, _: bar.update(task, completed=done)
        )
    console.print(
        f"history: {written.days} days, {written.deliveries:,} deliveries, {written.rows:,} rows in "
        f"{written.load_s + written.rebuild_s:,.1f} s ({written.rows_per_second:,.0f} rows/s)"
    )
    return written.as_dict()


def _last_issue(services: Any) -> int:
    from sqlalchemy import func, select

    from digest.db import session_scope
    from digest.ledger.models import Issue

    with session_scope(services.sessions) as session:
        issue_id = session.scalar(select(func.max(Issue.id)))
    assert issue_id is not None
    return int(issue_id)
