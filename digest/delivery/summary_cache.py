"""The summaries a worker process has read, kept across chunks by the version they were read at.

Every chunk of a send carries the same few hundred summaries. Reading them in full (with their
specialties, a second query) cost about 40 % of loading a chunk, for rows that had not changed
since the last chunk. A chunk now reads only the ids' ``updated_at`` and loads in full only the
summaries new to this process or changed since (ingest stamps ``updated_at`` on every change,
specialties included), so an edited summary goes out as edited from the next chunk on.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from digest.db import InList
from digest.ingest.models import Summary
from digest.lru import LRUCache

_VERSIONS = select(Summary.id, Summary.updated_at).where(InList(Summary.id, "summary_ids"))
_SUMMARIES = select(Summary).where(InList(Summary.id, "summary_ids"))


class SummaryCache:
    """Summaries by id (detached, read-only), at most ``size``, the least recently used dropped first.
    Threads of one process may share it (the queries run outside its lock)."""

    def __init__(self, size: int = 2048):
        self._kept: LRUCache[str, tuple[datetime, Summary]] = LRUCache(size)
        self._lock = threading.Lock()
        self.loaded = 0  # summaries read in full, for tests and profiling

    def get(self, session: Session, ids: Sequence[str]) -> dict[str, Summary]:
        """The summaries of ``ids`` that still exist, as they are now."""
        if not ids:
            return {}
        versions: dict[str, datetime] = dict(session.execute(_VERSIONS, {"summary_ids": list(ids)}).all())
        found: dict[str, Summary] = {}
        stale: list[str] = []
        with self._lock:
            for summary_id, version in versions.items():
                kept = self._kept.get(summary_id)
                if kept is not None and kept[0] == version:
                    found[summary_id] = kept[1]
                else:
                    stale.append(summary_id)
        if not stale:
            return found
        fresh = list(session.scalars(_SUMMARIES, {"summary_ids": stale}))  # one deleted meanwhile is left out
        with self._lock:
            for summary in fresh:
                self._kept[summary.id] = (summary.updated_at, summary)
                found[summary.id] = summary
                self.loaded += 1
        return found
