"""Database statement counts of a worker process, for the benchmark (``DIGEST_BENCH_STATS_DIR``).

A SQLAlchemy listener counts every statement sent to the server (``before_cursor_execute``) and every
commit; after each task the process writes its totals to ``<dir>/<pid>.json``. The benchmark adds the
files up and divides by the messages sent. Off unless the variable is set.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, event


class StatementCounter:
    def __init__(self, engine: Engine, directory: Path):
        self.statements = 0
        self.commits = 0
        self.path = directory / f"{os.getpid()}.json"
        directory.mkdir(parents=True, exist_ok=True)
        event.listen(engine, "before_cursor_execute", self._statement)
        event.listen(engine, "commit", self._commit)

    def _statement(self, *_: Any) -> None:
        self.statements += 1

    def _commit(self, *_: Any) -> None:
        self.commits += 1

    def write(self) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"statements": self.statements, "commits": self.commits}))
        tmp.replace(self.path)
