"""What a run costs the machine, per component: memory and CPU time of processes, and PostgreSQL's
WAL and database size.

Components are groups of processes sampled together in the background (psutil, every 0.2 s):
the celery workers (each worker and its pool children), the PostgreSQL backends serving the
benchmark's database (found in ``pg_stat_activity``, refreshed every second), the SMTP sink, and
the web server answering unsubscribes. For each group: the peak RSS of every process, and the CPU
time (user + system) it used while sampled. A backend's RSS counts the shared buffers it touched,
so the sum over backends overstates PostgreSQL's memory; the largest backend and the sum are both
reported. CPU time of a process that exits between two samples is counted up to its last sample.

WAL is read from ``pg_current_wal_lsn()``: it is the whole cluster's, so WAL per message is only
this run's on a cluster nothing else writes to (the JSON says so).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.pool import NullPool


@dataclass
class _Group:
    pids: Callable[[], list[int]]  # the processes of the group now (roots are expanded to their trees)
    peak_rss: dict[int, int] = field(default_factory=dict)
    cpu_first: dict[int, float] = field(default_factory=dict)
    cpu_last: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GroupUsage:
    peak_rss_mb: dict[int, float]
    cpu_s: float

    @property
    def peak_rss_mb_max(self) -> float:
        return max(self.peak_rss_mb.values(), default=0.0)

    @property
    def peak_rss_mb_sum(self) -> float:
        return sum(self.peak_rss_mb.values())


def tree(roots: list[int]) -> Callable[[], list[int]]:
    """The processes of the trees under ``roots``, whenever asked."""

    def pids() -> list[int]:
        out = []
        for root in roots:
            try:
                parent = psutil.Process(root)
                out += [parent.pid, *(c.pid for c in parent.children(recursive=True))]
            except psutil.NoSuchProcess:
                continue
        return out

    return pids


class ProcessSampler(threading.Thread):
    """Peak RSS and CPU time of named groups of processes, sampled in the background.

    ``fresh`` groups are processes that start during the run (their CPU time counts from zero);
    the others' CPU time counts from the first sample.
    """

    def __init__(self, groups: dict[str, Callable[[], list[int]]], fresh: tuple[str, ...] = (), every: float = 0.2):
        super().__init__(daemon=True)
        self.groups = {name: _Group(pids) for name, pids in groups.items()}
        self.fresh = fresh
        self.every = every
        self._halt = threading.Event()
        self._known: dict[str, list[int]] = {}
        self._refreshed = 0.0

    def run(self) -> None:
        while not self._halt.is_set():
            self.sample()
            self._halt.wait(self.every)

    def sample(self) -> None:
        now = time.monotonic()
        if now - self._refreshed > 1.0:  # listing processes (and backends) costs more than reading them
            self._known = {name: group.pids() for name, group in self.groups.items()}
            self._refreshed = now
        for name, group in self.groups.items():
            for pid in self._known.get(name, []):
                try:
                    proc = psutil.Process(pid)
                    with proc.oneshot():
                        rss, cpu = proc.memory_info().rss, sum(proc.cpu_times()[:2])
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
                group.peak_rss[pid] = max(group.peak_rss.get(pid, 0), rss)
                group.cpu_first.setdefault(pid, 0.0 if name in self.fresh else cpu)
                group.cpu_last[pid] = cpu

    def stop(self) -> dict[str, GroupUsage]:
        self._halt.set()
        if self.is_alive():
            self.join()
        self._refreshed = 0.0
        self.sample()  # the last word: CPU up to now
        return {
            name: GroupUsage(
                peak_rss_mb={pid: rss / 2**20 for pid, rss in sorted(g.peak_rss.items())},
                cpu_s=sum(g.cpu_last[pid] - g.cpu_first[pid] for pid in g.cpu_last),
            )
            for name, g in self.groups.items()
        }


class PostgresProbe:
    """The benchmark database's size, the cluster's WAL position, and the backends serving the database."""

    def __init__(self, database_url: str):
        self.engine: Engine = create_engine(database_url, poolclass=NullPool)

    def wal_bytes(self) -> int:
        """Bytes of WAL the cluster has written since it began (a position that only grows)."""
        with self.engine.connect() as conn:
            return int(conn.scalar(text("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')")) or 0)

    def database_bytes(self) -> int:
        with self.engine.connect() as conn:
            return int(conn.scalar(text("SELECT pg_database_size(current_database())")) or 0)

    def backends(self) -> list[int]:
        """PostgreSQL processes serving this database (not this probe's own)."""
        with self.engine.connect() as conn:
            return list(
                conn.scalars(
                    text(
                        "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
                        "AND pid <> pg_backend_pid() AND backend_type = 'client backend'"
                    )
                )
            )

    def close(self) -> None:
        self.engine.dispose()
