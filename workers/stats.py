"""Database statement counts and variant renders of a worker process, for the benchmark
(``DIGEST_BENCH_STATS_DIR``).

A SQLAlchemy listener counts every statement sent to the server (``before_cursor_execute``) and every
commit, and the renderer counts the variants this process rendered itself (not read back from the
other processes: digest/rendering/shared_bodies.py); after each task the process writes its totals
to ``<dir>/<pid>.json``. The benchmark adds the files up. Off unless the variable is set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event

from digest.rendering.compiled import EmailRenderer

RECORD_BYTES = 128  # JSON padded with spaces: each write covers the last one whole


class WorkerStats:
    def __init__(self, engine: Engine, renderer: EmailRenderer, directory: Path):
        self.renderer = renderer
        self.statements = 0
        self.commits = 0
        self.path = directory / f"{os.getpid()}.json"
        directory.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = None  # opened at the first write: a process with no task leaves no file
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _commit(self, *_: Any) -> None:
        self.commits += 1

    def write(self) -> None:
        """Overwrite the totals in place: one ``pwrite`` of a fixed-size record, no new file. A
        temporary file renamed over the old one after every task put a journalled metadata
        change on the send path, and the worker sometimes waited on it behind the database's
        WAL flushes."""
        totals = {"statements": self.statements, "commits": self.commits, "renders": self.renderer.passes}
        record = json.dumps(totals).encode().ljust(RECORD_BYTES)
        if self._fd is None:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        os.pwrite(self._fd, record, 0)
