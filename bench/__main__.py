"""``python -m bench``: the send-path benchmark (see docs/benchmark.md)."""

from __future__ import annotations

import argparse
import signal
import sys
from datetime import date
from pathlib import Path

from rich.console import Console

from bench import matrix
from bench.data import ListSpec, ensure_database, with_schema
from bench.pipeline import LoadSpec, PipelineConfig
from bench.report import plot_scaling, print_all, write_json
from bench.run import RunOptions, run_once
from bench.sink import start_sink

RESULTS = Path(__file__).resolve().parent / "results"
SCALING = (10_000, 50_000, 100_000, 200_000)
SCALING_FIELDS = (
    "subscribers",
    "messages",
    "messages_per_second",
    "delivery_messages_per_second",
    "planning_s",
    "time_to_first_message_s",
    "peak_rss_mb_max",
    "db_statements_per_message",
    "all_delivered",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description="Generate a subscriber list in PostgreSQL and send one digest to all of it through the real "
        "pipeline (Redis, celery worker processes, planning, rendering, SMTP to Postfix's smtp-sink); measure the "
        "smtp-source limit and the naive render path in the same run. THE DATABASE IS WIPED.",
    )
    p.add_argument("--subscribers", type=int, default=100_000, help="list size (default 100000)")
    p.add_argument("--specialties", type=int, default=20, help="specialties the list is spread over (default 20)")
    p.add_argument("--summaries", type=int, default=300, help="summaries in the lookback window (default 300)")
    p.add_argument("--workers", type=int, default=1, help="celery worker processes (default 1)")
    p.add_argument(
        "--concurrency", type=int, default=4, help="pool processes per worker = SMTP connections (default 4)"
    )
    p.add_argument("--chunk-size", type=int, default=250, help="deliveries per task (default 250)")
    p.add_argument(
        "--smtp-batch",
        type=int,
        default=25,
        help="DIGEST_SMTP_BATCH_SIZE for the workers: messages per ledger commit "
        "(default 25; the service's own default is 1)",
    )
    p.add_argument(
        "--scaling", action="store_true", help=f"also run {', '.join(f'{n:,}' for n in SCALING)} and plot them"
    )
    p.add_argument(
        "--ledger-days",
        type=int,
        default=0,
        help="days of daily-digest history (sent, with clicks and churn) written before the run (default 0)",
    )
    p.add_argument(
        "--unsubscribes",
        type=int,
        default=0,
        help="readers who unsubscribe one-click through the served app during the send (default 0)",
    )
    p.add_argument(
        "--matrix",
        action="store_true",
        help="list size x ledger age, each point a fresh run with its baselines; one JSON and one plot "
        "(bench/results/<date>-matrix.json/.png)",
    )
    p.add_argument(
        "--matrix-sizes",
        type=_ints,
        default=matrix.SIZES,
        help=f"list sizes of the matrix (default {','.join(map(str, matrix.SIZES))})",
    )
    p.add_argument(
        "--matrix-days",
        type=_ints,
        default=matrix.DAYS,
        help=f"ledger ages in days (default {','.join(map(str, matrix.DAYS))})",
    )
    p.add_argument(
        "--matrix-age-size",
        type=int,
        default=matrix.AGE_SIZE,
        help=f"list size the ledger ages are run at (default {matrix.AGE_SIZE})",
    )
    p.add_argument("--smoke", action="store_true", help="a quick check: 500 subscribers, small baseline samples")
    p.add_argument(
        "--naive-sample", type=int, default=100, help="messages rendered for the naive baseline (default 100)"
    )
    p.add_argument(
        "--database-url",
        default="postgresql+psycopg://postgres@127.0.0.1:5432/bench",
        help="PostgreSQL database for the benchmark; it is wiped (default: the 'bench' database)",
    )
    p.add_argument("--schema", default="public", help="PostgreSQL schema to wipe and use (default public)")
    p.add_argument("--redis-url", default="redis://127.0.0.1:6379/15", help="broker; its db is flushed (default db 15)")
    p.add_argument("--aiosmtpd", action="store_true", help="use the aiosmtpd sink even if Postfix is there")
    p.add_argument("--output", type=Path, default=None, help="JSON path (default bench/results/<date>.json)")
    return p


def _ints(value: str) -> tuple[int, ...]:
    try:
        return tuple(int(v) for v in value.split(",") if v.strip())
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"a comma-separated list of whole numbers, not {value!r}") from exc


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # clean up (workers, sink) on kill
    try:
        return _run(args)
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run(args: argparse.Namespace) -> int:
    if not args.database_url.startswith("postgresql"):
        parser().error("--database-url must be a PostgreSQL URL")
    console = Console()
    ensure_database(args.database_url)
    subscribers = 500 if args.smoke else args.subscribers
    naive_sample = min(args.naive_sample, 20) if args.smoke else args.naive_sample
    config = PipelineConfig(
        with_schema(args.database_url, args.schema),
        args.redis_url,
        args.workers,
        args.concurrency,
        args.chunk_size,
        {"DIGEST_SMTP_BATCH_SIZE": str(args.smtp_batch)},
    )
    output = args.output or RESULTS / f"{date.today().isoformat()}{'-matrix' if args.matrix else ''}.json"
    sink = start_sink(console.print, prefer_postfix=not args.aiosmtpd)
    try:
        options = RunOptions(
            ListSpec(subscribers, args.specialties, args.summaries),
            config,
            naive_sample,
            schema=args.schema,
            ledger_days=args.ledger_days,
            unsubscribes=LoadSpec(args.unsubscribes) if args.unsubscribes else None,
        )
        if args.matrix:
            plan = matrix.points(args.matrix_sizes, args.matrix_days, args.matrix_age_size)
            done = matrix.run_matrix(console, options, sink, plan, output)
            console.print(matrix.table(done))
            console.print(f"results: {output}" + (f" and {done['plot']}" if "plot" in done else ""))
            return 0 if all(p["all_delivered"] for p in done["points"]) else 1
        result = run_once(console, options, sink)
        write_json(output, result)
        if args.scaling:
            result["scaling"] = []
            for size in SCALING:
                if size == subscribers:
                    point = result
                else:
                    point = run_once(
                        console,
                        RunOptions(
                            ListSpec(size, args.specialties, args.summaries),
                            config,
                            baselines=False,
                            schema=args.schema,
                        ),
                        sink,
                    )
                result["scaling"].append({k: point[k] for k in SCALING_FIELDS})
                console.print(
                    f"scaling: {size:,} subscribers, {point['messages_per_second']:,.0f} msg/s, "
                    f"peak RSS {point['peak_rss_mb_max']:.0f} MB"
                )
                write_json(output, result)  # after every point: a long run that fails keeps what it measured
            result["scaling_plot"] = plot_scaling(output.with_suffix(".png"), result["scaling"]).name
            write_json(output, result)
    finally:
        sink.stop()
    print_all(console, result)
    console.print(f"results: {output}")
    return 0 if result["all_delivered"] else 1


if __name__ == "__main__":
    sys.exit(main())
