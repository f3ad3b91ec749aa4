"""One benchmark run: generate the list, run the pipeline, measure the baselines, assemble the result."""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from sqlalchemy import Engine

from bench.baselines import naive_render, smtp_source
from bench.data import ListSpec, generate, reset_schema
from bench.history import HistorySpec, generate_history
from bench.pipeline import PipelineConfig, run_pipeline
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


def run_once(console: Console, options: RunOptions, sink: Sink) -> dict[str, Any]:
    """Generate ``options.spec`` and send it; with ``baselines``, measure (a) and (b) too."""
    config = options.pipeline
    now = datetime.now(UTC).replace(microsecond=0)
    engine = make_engine(config.database_url)
    with console.status(f"generating {options.spec.subscribers:,} subscribers, {options.spec.summaries} summaries"):
        reset_schema(engine, options.schema)
        generate(engine, options.spec, now)
    history = _history(console, engine, options, now)
    engine.dispose()
    workdir = Path(tempfile.mkdtemp(prefix="digest-bench-"))
    settings = bench_settings(config, sink, workdir / "var")
    with Progress(
        TextColumn(f"[bold]{options.spec.subscribers:,}[/bold] sending"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), console=console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("send", total=None, rate="")

        def progress(done: int, total: int) -> None:
            elapsed = bar.tasks[0].elapsed or 0
            bar.update(task, completed=done, total=total, rate=f"{done / elapsed:,.0f} msg/s" if elapsed else "")

        result = run_pipeline(settings, config, sink, now, progress, workdir)
    out: dict[str, Any] = {
        "subscribers": options.spec.subscribers,
        "specialties": options.spec.specialties,
        "ledger_days": options.ledger_days,
        "history": history,
        "summaries": options.spec.summaries,
        "messages": result.received,
        "deliveries_planned": result.deliveries,
        "sent_in_ledger": result.sent_in_ledger,
        "all_delivered": result.received == result.deliveries == result.sent_in_ledger,
        "messages_per_second": result.messages_per_second,
        "delivery_messages_per_second": result.delivery_messages_per_second,
        "time_to_first_message_s": result.first_message_s,
        "planning_s": result.planning_s,
        "dispatch_s": result.dispatch_s,
        "end_to_end_s": result.end_to_end_s,
        "peak_rss_mb_max": max(result.peak_rss_mb.values(), default=0.0),
        "peak_rss_mb_per_process": {str(pid): round(mb, 1) for pid, mb in result.peak_rss_mb.items()},
        "db_statements_per_message": result.statements / max(1, result.received),
        "db_commits_per_message": result.commits / max(1, result.received),
        "db_count_method": "SQLAlchemy before_cursor_execute/commit listeners in every worker process (workers/stats.py)",
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
            with console.status(f"baseline (b): naive render+premailer for {options.naive_sample} messages, best of 3"):
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
        with console.status(
            f"baseline (a): smtp-source, {result.received:,} messages of {naive.mean_message_bytes:,} bytes"
        ):
            source = smtp_source(
                sink, messages=result.received, size=naive.mean_message_bytes, sessions=config.connections
            )
        if source is not None:
            out["smtp_source"] = {**source.__dict__, "messages_per_second": source.messages_per_second}
            out["ratio_to_smtp_source"] = out["messages_per_second"] / source.messages_per_second
    return out


def _history(console: Console, engine: Engine, options: RunOptions, now: datetime) -> dict[str, Any] | None:
    """Write ``options.ledger_days`` days of history under a progress bar; what was written, and how fast."""
    if options.ledger_days <= 0:
        return None
    with Progress(
        TextColumn(f"[bold]{options.ledger_days}[/bold] days of history"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), console=console, transient=True,
    ) as bar:  # fmt: skip
        task = bar.add_task("history", total=options.ledger_days)
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
