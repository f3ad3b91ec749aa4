"""``python -m bench --matrix``: how the costs grow with the list and with the ledger.

Two dimensions, each point a fresh run (schema wiped, list generated, history written, the send,
then the two baselines of that same run):
- list size: ``sizes`` subscribers on an empty ledger (default 10k, 100k, 1M);
- ledger age: ``age_size`` subscribers on ``days`` days of daily-digest history (default 100k on
  0, 90, 365 days; bench/history.py), so that the empty and the aged ledger run back to back.
During every send, 1 % of the readers (at most ``MAX_LEAVING``) unsubscribe one-click through the
served app, at ``UNSUBSCRIBE_RATE`` a second. One JSON (every point, written after each one, so a
long run that fails keeps what it measured) and one plot.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
from rich.console import Console
from rich.table import Table

from bench.data import ListSpec
from bench.pipeline import LoadSpec
from bench.report import write_json
from bench.run import RunOptions, phase, progress_bar, run_once
from bench.sink import Sink

SIZES = (10_000, 100_000, 1_000_000)
DAYS = (0, 90, 365)
AGE_SIZE = 100_000
MAX_LEAVING = 2_000
UNSUBSCRIBE_RATE = 50.0
# What every point reports (the plot and the test read these).
METRICS = (
    "messages_per_second", "delivery_messages_per_second", "planning_s", "time_to_first_message_s",
    "unsubscribe_p99_ms", "peak_rss_mb_max", "postgres_rss_mb_max", "postgres_rss_mb_sum", "database_bytes",
    "wal_bytes_per_message", "cpu_us_per_message", "ratio_to_smtp_source", "ratio_to_naive", "all_delivered",
)  # fmt: skip


@dataclass(frozen=True)
class Point:
    subscribers: int
    ledger_days: int

    @property
    def label(self) -> str:
        return f"{self.subscribers:,} readers, {self.ledger_days} days of history"


def points(sizes: tuple[int, ...], days: tuple[int, ...], age_size: int) -> list[Point]:
    """The list sizes on an empty ledger, then the ledger ages at ``age_size`` (each point once)."""
    out = [Point(size, 0) for size in sorted(sizes)]
    out += [Point(age_size, d) for d in sorted(days) if Point(age_size, d) not in out]
    return out


def leaving(subscribers: int) -> int:
    return max(10, min(MAX_LEAVING, subscribers // 100))


def run_matrix(console: Console, base: RunOptions, sink: Sink, plan: list[Point], output: Path) -> dict[str, Any]:
    """Run every point of ``plan`` with ``base``'s settings; write the JSON after each and the plot at the end."""
    result: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cpus": psutil.cpu_count(),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
            "platform": platform.platform(),
            "python": platform.python_version(),
        },
        "points": [],
    }
    with progress_bar(console) as bar, phase(bar, "[bold]matrix[/bold]", total=len(plan)) as overall:
        for n, point in enumerate(plan):
            bar.update(overall, description=f"[bold]matrix[/bold] {n + 1}/{len(plan)}: {point.label}")
            options = replace(
                base,
                spec=ListSpec(point.subscribers, base.spec.specialties, base.spec.summaries),
                ledger_days=point.ledger_days,
                unsubscribes=LoadSpec(leaving(point.subscribers), UNSUBSCRIBE_RATE),
                baselines=True,
            )
            try:
                measured = run_once(console, options, sink, bar)
            except Exception as exc:
                measured = {"subscribers": point.subscribers, "ledger_days": point.ledger_days,
                            "error": f"{type(exc).__name__}: {exc}", "all_delivered": False}  # fmt: skip
                console.print(f"[red]{point.label}: failed[/red] ({measured['error']})")
            else:
                console.print(_line(point, measured))
            result["points"].append(measured)
            result["comparisons"] = comparisons(result["points"])
            write_json(output, result)
            bar.advance(overall)
    if measured_points(result["points"]):
        result["plot"] = plot_matrix(output.with_suffix(".png"), result["points"]).name
    write_json(output, result)
    return result


def _line(point: Point, r: dict[str, Any]) -> str:
    p99 = r["unsubscribe_p99_ms"]
    return (
        f"{point.label}: {r['messages_per_second']:,.0f} msg/s, planning {r['planning_s']:.2f} s, "
        f"first message {r['time_to_first_message_s']:.2f} s, unsubscribe p99 "
        f"{'n/a' if p99 is None else f'{p99:.0f} ms'}, all delivered: {r['all_delivered']}"
    )


def comparisons(results: list[dict[str, Any]]) -> dict[str, Any]:
    """The ratios the targets are stated in: each aged ledger against the empty one of the same size,
    each list size against the age size's empty-ledger run."""
    results = measured_points(results)
    empty = {r["subscribers"]: r for r in results if r["ledger_days"] == 0}
    out: dict[str, Any] = {"ledger_age": [], "list_size": []}
    for r in results:
        base = empty.get(r["subscribers"])
        if r["ledger_days"] and base:
            out["ledger_age"].append({
                "subscribers": r["subscribers"], "ledger_days": r["ledger_days"],
                "planning_ratio": _ratio(r["planning_s"], base["planning_s"]),
                "messages_per_second_ratio": _ratio(r["messages_per_second"], base["messages_per_second"]),
            })  # fmt: skip
    aged = {r["subscribers"] for r in results if r["ledger_days"]}
    reference = empty.get(min(aged) if aged else AGE_SIZE) or (empty[min(empty)] if empty else None)
    for r in results:
        if r["ledger_days"] == 0 and reference and r is not reference:
            out["list_size"].append({
                "subscribers": r["subscribers"], "against": reference["subscribers"],
                "messages_per_second_ratio": _ratio(r["messages_per_second"], reference["messages_per_second"]),
                "worker_rss_ratio": _ratio(r["peak_rss_mb_max"], reference["peak_rss_mb_max"]),
            })  # fmt: skip
    return out


def measured_points(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The points that ran to the end (a failed one has only its coordinates and the error)."""
    return [r for r in results if "error" not in r]


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def table(result: dict[str, Any]) -> Table:
    t = Table(title="digest: cost by list size and ledger age")
    cols = ("readers", "days", "msg/s", "planning s", "first msg s", "unsub p99 ms", "worker MB", "PG MB (max)",
            "DB MB", "WAL B/msg", "all delivered")  # fmt: skip
    for col in cols:
        t.add_column(col, justify="right")
    for r in measured_points(result["points"]):
        p99 = r["unsubscribe_p99_ms"]
        t.add_row(
            f"{r['subscribers']:,}", str(r["ledger_days"]), f"{r['messages_per_second']:,.0f}",
            f"{r['planning_s']:.2f}", f"{r['time_to_first_message_s']:.2f}", "n/a" if p99 is None else f"{p99:.0f}",
            f"{r['peak_rss_mb_max']:.0f}", f"{r['postgres_rss_mb_max']:.0f}", f"{r['database_bytes'] / 2**20:,.0f}",
            f"{r['wal_bytes_per_message']:,.0f}", str(r["all_delivered"]),
        )  # fmt: skip
    return t


def plot_matrix(path: Path, results: list[dict[str, Any]]) -> Path:
    """Six measures (rows) against list size (left, empty ledger) and ledger age (right), one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    results = measured_points(results)
    by_size = sorted((r for r in results if r["ledger_days"] == 0), key=lambda r: r["subscribers"])
    aged = {r["subscribers"] for r in results if r["ledger_days"]}
    age_size = min(aged) if aged else AGE_SIZE
    ages = [r for r in results if r["subscribers"] == age_size]
    by_age = sorted(ages, key=lambda r: r["ledger_days"])
    rows: list[tuple[str, list[tuple[str, Any]]]] = [
        ("messages/s", [("end to end", lambda r: r["messages_per_second"]),
                        ("send phase", lambda r: r["delivery_messages_per_second"])]),
        ("seconds", [("planning", lambda r: r["planning_s"]),
                     ("time to first message", lambda r: r["time_to_first_message_s"])]),
        ("unsubscribe p99 (ms)", [("one-click POST during the send", lambda r: r["unsubscribe_p99_ms"])]),
        ("peak RSS (MB)", [("largest worker process", lambda r: r["peak_rss_mb_max"]),
                           ("largest PostgreSQL backend", lambda r: r["postgres_rss_mb_max"])]),
        ("database size (MB)", [("pg_database_size after the send", lambda r: r["database_bytes"] / 2**20)]),
        ("WAL bytes/message", [("pg_current_wal_lsn delta / messages", lambda r: r["wal_bytes_per_message"])]),
    ]  # fmt: skip
    fig, axes = plt.subplots(len(rows), 2, figsize=(11, 3 * len(rows)), dpi=110, squeeze=False)
    for i, (unit, series) in enumerate(rows):
        for j, (points_, x_of, xlabel) in enumerate(
            ((by_size, lambda r: r["subscribers"], "subscribers (empty ledger)"),
             (by_age, lambda r: r["ledger_days"], f"days of history ({by_age[0]['subscribers']:,} readers)"
              if by_age else "days of history"))
        ):  # fmt: skip
            ax = axes[i][j]
            for label, y_of in series:
                xs = [x_of(r) for r in points_ if y_of(r) is not None]
                ax.plot(xs, [y_of(r) for r in points_ if y_of(r) is not None], "o-", label=label)
            if j == 0 and len({r["subscribers"] for r in by_size}) > 1:
                ax.set_xscale("log")
            ax.set_ylim(bottom=0)
            ax.set_ylabel(unit)
            ax.set_xlabel(xlabel)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="lower left")
    fig.suptitle("digest: costs by list size and by ledger age (each point a fresh run)")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path
