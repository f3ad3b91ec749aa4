"""Results: the terminal table, ``bench/results/<date>.json`` and the scaling plot (PNG)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

# The targets, shown next to the figures (never asserted in tests).
TARGETS = {
    "messages_per_second": 2000.0,
    "ratio_to_smtp_source": 0.35,
    "ratio_to_naive": 20.0,
    "planning_s": 10.0,
    "peak_rss_mb_max": 200.0,
}
FIELDS = (
    "subscribers", "messages", "messages_per_second", "delivery_messages_per_second", "ratio_to_smtp_source",
    "ratio_to_naive", "time_to_first_message_s", "planning_s", "peak_rss_mb_max", "peak_rss_mb_per_process",
    "db_statements_per_message", "db_commits_per_message", "smtp_source", "naive", "naive_cached_stylesheet",
    "ratio_to_naive_cached_stylesheet", "sink", "workers",
    "concurrency", "connections", "all_delivered", "variants", "variant_renders",
)  # fmt: skip


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:,.{digits}f}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _verdict(name: str, value: Any) -> str:
    target = TARGETS.get(name)
    if target is None or value is None:
        return ""
    ok = value < target if name in ("planning_s", "peak_rss_mb_max") else value >= target
    sign = "<" if name in ("planning_s", "peak_rss_mb_max") else ">="
    return f"{'[green]met[/green]' if ok else '[red]missed[/red]'} ({sign} {target:g})"


def table(result: dict[str, Any]) -> Table:
    t = Table(title=f"digest send path, {result['subscribers']:,} subscribers ({result['sink']})")
    t.add_column("measure")
    t.add_column("value", justify="right")
    t.add_column("target")
    rows = [
        ("messages delivered", "messages", 0),
        ("end to end (messages/s)", "messages_per_second", 0),
        ("send phase only (messages/s)", "delivery_messages_per_second", 0),
        ("smtp-source limit (messages/s)", None, 0),
        ("ratio to smtp-source", "ratio_to_smtp_source", 2),
        ("naive render+premailer (messages/s)", None, 1),
        ("ratio to naive", "ratio_to_naive", 1),
        ("naive, premailer with stylesheet cache (messages/s)", None, 1),
        ("ratio to that", "ratio_to_naive_cached_stylesheet", 1),
        ("time to first message (s)", "time_to_first_message_s", 2),
        ("planning (s)", "planning_s", 2),
        ("peak RSS, largest worker process (MB)", "peak_rss_mb_max", 1),
        ("database statements per message", "db_statements_per_message", 2),
        ("database commits per message", "db_commits_per_message", 2),
        ("variants sent", "variants", 0),
        ("variants rendered, all worker processes", "variant_renders", 0),
        ("unsubscribe p99 during the send (ms)", "unsubscribe_p99_ms", 0),
        ("peak RSS, largest PostgreSQL backend (MB)", "postgres_rss_mb_max", 1),
        ("WAL per message (bytes, whole cluster)", "wal_bytes_per_message", 0),
    ]
    for label, key, digits in rows:
        if key is not None and key not in result:
            continue
        if key is None:
            source = result[
                "smtp_source" if "smtp" in label else "naive_cached_stylesheet" if "cache" in label else "naive"
            ]
            value = source["messages_per_second"] if source else None
            t.add_row(label, _fmt(value, digits), "")
        else:
            t.add_row(label, _fmt(result[key], digits), _verdict(key, result[key]))
    if result.get("database_bytes") is not None:
        t.add_row("database size after the send (MB)", _fmt(result["database_bytes"] / 2**20, 0), "")
    for component, us in (result.get("cpu_us_per_message") or {}).items():
        t.add_row(f"CPU per message, {component} (µs)", _fmt(float(us), 0), "")
    return t


def scaling_table(points: list[dict[str, Any]]) -> Table:
    t = Table(title="scaling")
    for col in ("subscribers", "messages/s", "planning (s)", "peak RSS (MB)"):
        t.add_column(col, justify="right")
    for p in points:
        t.add_row(
            _fmt(p["subscribers"]),
            _fmt(p["messages_per_second"], 0),
            _fmt(p["planning_s"], 2),
            _fmt(p["peak_rss_mb_max"], 1),
        )
    return t


def write_json(path: Path, payload: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path


def plot_scaling(path: Path, points: list[dict[str, Any]]) -> Path:
    """Throughput and peak worker RSS against list size, one PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = [p["subscribers"] for p in points]
    fig, ax1 = plt.subplots(figsize=(7, 4.2), dpi=120)
    ax1.plot(sizes, [p["messages_per_second"] for p in points], "o-", color="#0b7a8f", label="messages/s (end to end)")
    ax1.set_xlabel("subscribers")
    ax1.set_ylabel("messages/s", color="#0b7a8f")
    ax1.set_ylim(bottom=0)
    ax2 = ax1.twinx()
    ax2.plot(
        sizes, [p["peak_rss_mb_max"] for p in points], "s--", color="#b5482d", label="peak RSS, largest worker (MB)"
    )
    ax2.set_ylabel("peak RSS per worker process (MB)", color="#b5482d")
    ax2.set_ylim(0, max(TARGETS["peak_rss_mb_max"], *(p["peak_rss_mb_max"] for p in points)) * 1.1)
    ax2.axhline(TARGETS["peak_rss_mb_max"], color="#b5482d", linewidth=0.6, linestyle=":")
    lines = ax1.get_lines() + ax2.get_lines()[:1]
    ax1.legend(lines, [line.get_label() for line in lines], loc="lower left", fontsize=8)
    ax1.set_title("digest: throughput and worker memory by list size")
    ax1.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def print_all(console: Console, result: dict[str, Any]) -> None:
    console.print(table(result))
    if result.get("scaling"):
        console.print(scaling_table(result["scaling"]))
