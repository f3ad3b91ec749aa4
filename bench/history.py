"""Daily-digest history for the benchmark list, written set-based in PostgreSQL (``--ledger-days N``).

What a year of daily digests leaves behind, without sending anything: for each of the N days
before today's period, one sent digest issue, the planning groups' selections (one per group of
readers with the same specialty set and edition, 8 summaries each, as planning shares them) and
one delivery per reader (``period_key`` ``daily:YYYY-MM-DD``, status sent, 5 ms apart from the
07:00 UTC slot), in planning's order (by selection, then subscriber). Around it,
a realistic sprinkle of what readers do:

- clicks: ``click_rate`` of the sent deliveries have one tracked-link click, within hours;
- churn: ``churn_per_day`` of the list leaves each day. These former readers are extra subscribers
  (ids above the list's): they received every digest from the start of the history up to the day
  they left; three in four unsubscribed a few hours after that digest (status unsubscribed,
  suppression ``unsubscribed``), one in four hard-bounced on it (that delivery failed, suppression
  ``hard_bounce``; the subscriber stays active, as the events service leaves it).

Every history summary was published ``lookback + 1`` days before the digest that carried it, so
none is a candidate of today's planning: today's run plans and sends exactly what it does on an
empty ledger, and what differs is only how much history its queries search (the point of the
measurement). The list's own ``last_digest_at`` stays unset for the same reason.

Loading is a bulk load: the secondary indexes and constraints of the ledger tables are dropped
first and rebuilt at the end from their own definitions (``pg_get_indexdef``/``pg_get_constraintdef``),
which is several times faster than maintaining them row by row; each day is one short transaction.

The history's deliveries are written as full pages (fillfactor 100 for the load, the table's own
setting restored afterwards). A page of the ledger in service ends full: the send grows each planned
row in place while the room lasts, and moves the rest to pages of their own, which fill in turn. A
page loaded at the table's fillfactor would instead keep the tenth it leaves for those sends, free
forever, and offer it to today's planning (one row in each history page): a layout no service has.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, text

from digest.selection.planner import Schedule, current_period

# The tables the history fills, whose indexes and constraints are rebuilt after the load.
LEDGER_TABLES = ("deliveries", "selections", "selection_items", "clicks")
HISTORY_PREFIX = "bench-h"


@dataclass(frozen=True)
class HistorySpec:
    days: int
    summaries_per_day: int = 50
    items_per_digest: int = 8
    click_rate: float = 0.03
    churn_per_day: float = 0.0005
    lookback_days: int = 7
    seed: float = 0.17


@dataclass(frozen=True)
class HistoryResult:
    days: int
    issues: int
    deliveries: int
    selections: int
    selection_items: int
    clicks: int
    former_readers: int
    load_s: float  # the days' inserts
    rebuild_s: float  # indexes, constraints and ANALYZE afterwards

    @property
    def rows(self) -> int:
        return self.issues + self.deliveries + self.selections + self.selection_items + self.clicks

    @property
    def rows_per_second(self) -> float:
        total = self.load_s + self.rebuild_s
        return self.rows / total if total else 0.0

    def as_dict(self) -> dict[str, float | int]:
        return {**self.__dict__, "rows": self.rows, "rows_per_second": round(self.rows_per_second)}


def history_days(now: datetime, days: int) -> list[tuple[str, datetime]]:
    """(period_key, slot) of the ``days`` daily periods before the one current at ``now``, oldest first."""
    today = current_period(Schedule("daily", "UTC", 7, 0), now)
    slots = [today.slot - timedelta(days=d) for d in range(days, 0, -1)]
    return [(f"daily:{slot.date().isoformat()}", slot) for slot in slots]


def generate_history(
    engine: Engine, spec: HistorySpec, now: datetime, progress: Callable[[int, int], None] | None = None
) -> HistoryResult:
    """Write ``spec.days`` days of history for the generated list (bench/data.py) in ``engine``'s database."""
    if spec.days <= 0:
        return HistoryResult(0, 0, 0, 0, 0, 0, 0, 0.0, 0.0)
    if spec.summaries_per_day < spec.items_per_digest:
        raise ValueError("summaries_per_day must be at least items_per_digest")
    days = history_days(now, spec.days)
    t0 = time.perf_counter()
    with engine.begin() as conn:
        former = _setup(conn, spec, days)
        saved = _drop_secondary(conn)
        fillfactor = _full_pages(conn)
    totals = dict.fromkeys(("deliveries", "selections", "selection_items", "clicks"), 0)
    for n, (period_key, slot) in enumerate(days):
        age = len(days) - n  # days before today's period
        with engine.begin() as conn:
            for key, count in _one_day(conn, spec, age, period_key, slot).items():
                totals[key] += count
        if progress is not None:
            progress(n + 1, len(days))
    load = time.perf_counter() - t0
    t1 = time.perf_counter()
    with engine.begin() as conn:
        for statement in saved:
            conn.execute(text(statement))
        conn.execute(text(f"ALTER TABLE deliveries SET (fillfactor = {fillfactor})"))
        conn.execute(text("DROP TABLE bench_history_members, bench_history_keys"))
    with engine.connect() as conn:
        # Then a checkpoint: the load's dirty pages are written now, not by the measured planning's
        # backends while a checkpoint triggered by the load's WAL runs (a year-old ledger in service
        # has no such backlog).
        autocommit = conn.execution_options(isolation_level="AUTOCOMMIT")
        autocommit.execute(text("VACUUM ANALYZE"))
        autocommit.execute(text("CHECKPOINT"))
    return HistoryResult(
        days=len(days), issues=len(days), former_readers=former, load_s=load, rebuild_s=time.perf_counter() - t1,
        **totals,
    )  # fmt: skip


def _full_pages(conn: Connection) -> int:
    """Load the deliveries as full pages (the module's docstring says why); the table's own fillfactor."""
    options = conn.scalar(text("SELECT reloptions FROM pg_class WHERE oid = CAST('deliveries' AS regclass)")) or []
    own = next((int(option.split("=")[1]) for option in options if option.startswith("fillfactor=")), 100)
    conn.execute(text("ALTER TABLE deliveries SET (fillfactor = 100)"))
    return own


def _setup(conn: Connection, spec: HistorySpec, days: list[tuple[str, datetime]]) -> int:
    """The former readers, the history's summaries, and the helper tables of members and groups."""
    first_slot = days[0][1].replace(tzinfo=None)
    conn.execute(text("SELECT setseed(:s)"), {"s": spec.seed})
    # Readers joined before the first day of the history (bench/data.py says 30 days ago).
    joined = first_slot - timedelta(hours=1)
    conn.execute(
        text("UPDATE subscribers SET created_at = :j, confirmed_at = :j WHERE confirmed_at > :j"), {"j": joined}
    )
    listed = conn.scalar(text("SELECT coalesce(max(id), 0) FROM subscribers")) or 0
    former = round(listed * spec.churn_per_day * spec.days)
    params = {"listed": listed, "former": former, "days": spec.days, "joined": joined, "first": first_slot}
    conn.execute(
        text(
            """
            CREATE UNLOGGED TABLE bench_history_members AS
            SELECT id AS subscriber_id, :days AS first_age, 1 AS last_age, false AS bounced FROM subscribers
            UNION ALL
            SELECT :listed + g, :days, 1 + g % :days, g % 4 = 0 FROM generate_series(1, :former) AS g
            """
        ),
        params,
    )
    # Former readers: left on day ``last_age`` (days before today's period), a few hours after its digest.
    conn.execute(
        text(
            """
            INSERT INTO subscribers (id, email, name, cadence, timezone, send_hour, send_weekday, edition,
                                     status, created_at, confirmed_at, unsubscribed_at)
            SELECT m.subscriber_id, 'former' || m.subscriber_id || '@bench.example.org', 'Former reader', 'daily',
                   'UTC', 7, 0, CASE WHEN random() < 0.2 THEN 'patient' ELSE 'clinician' END,
                   CASE WHEN m.bounced THEN 'active' ELSE 'unsubscribed' END, :joined, :joined,
                   CASE WHEN m.bounced THEN NULL
                        ELSE CAST(:first AS timestamp) + (:days - m.last_age) * interval '1 day' + interval '3 hours'
                   END
            FROM bench_history_members AS m WHERE m.subscriber_id > :listed
            """
        ),
        params,
    )
    conn.execute(text("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :n)"), {"n": listed + former})
    conn.execute(
        text(
            """
            INSERT INTO subscriber_specialties (subscriber_id, specialty_id)
            SELECT m.subscriber_id, (SELECT min(id) FROM specialties) + m.subscriber_id % 5
            FROM bench_history_members AS m WHERE m.subscriber_id > :listed
            """
        ),
        params,
    )
    conn.execute(
        text(
            """
            INSERT INTO suppressions (value, reason, detail, created_at)
            SELECT s.email, CASE WHEN m.bounced THEN 'hard_bounce' ELSE 'unsubscribed' END, 'bench history',
                   CAST(:first AS timestamp) + (:days - m.last_age) * interval '1 day' + interval '3 hours'
            FROM bench_history_members AS m JOIN subscribers AS s ON s.id = m.subscriber_id
            WHERE m.subscriber_id > :listed
            """
        ),
        params,
    )
    # Planning's groups: readers with the same specialty set and edition share a list.
    conn.execute(
        text(
            """
            ALTER TABLE bench_history_members ADD COLUMN key text;
            UPDATE bench_history_members AS m SET key = g.key
            FROM (SELECT ss.subscriber_id, string_agg(ss.specialty_id::text, ',' ORDER BY ss.specialty_id)
                                           || '|' || min(s.edition) AS key
                  FROM subscriber_specialties AS ss JOIN subscribers AS s ON s.id = ss.subscriber_id
                  GROUP BY ss.subscriber_id) AS g
            WHERE g.subscriber_id = m.subscriber_id;
            CREATE UNLOGGED TABLE bench_history_keys AS
            SELECT key, row_number() OVER (ORDER BY key) AS n FROM (SELECT DISTINCT key FROM bench_history_members) k;
            CREATE INDEX ON bench_history_members (last_age);
            ANALYZE bench_history_members; ANALYZE bench_history_keys;
            """
        )
    )
    # The summaries the history carried (see the module docstring for their publication dates).
    conn.execute(
        text(
            """
            INSERT INTO summaries (id, title, key_takeaway, summary, patient_summary, study_type, sample_size,
                                   evidence_level, study_published, outcomes, safety, source_url,
                                   published_at, created_at, updated_at)
            SELECT :prefix || d || '-' || k, 'Earlier trial ' || d || '-' || k, 'An earlier finding.',
                   'Summary of an earlier trial.', 'In plain words: an earlier trial.', 'cohort study',
                   100 + k, 1 + k % 5, '2025-01', '[]', 'No excess of serious adverse events.',
                   'https://evidence.example.org/summaries/' || :prefix || d || '-' || k, t, t, t
            FROM generate_series(1, :days) AS d, generate_series(1, :per_day) AS k,
                 LATERAL (SELECT CAST(:first AS timestamp) + (:days - d) * interval '1 day'
                                 - (:lookback + 1) * interval '1 day' - k * interval '1 minute' AS t) AS at
            """
        ),
        {**params, "prefix": HISTORY_PREFIX, "per_day": spec.summaries_per_day, "lookback": spec.lookback_days},
    )
    conn.execute(
        text(
            """
            INSERT INTO summary_specialties (summary_id, specialty_id)
            SELECT s.id, sp.ids[1 + abs(hashtext(s.id)) % array_length(sp.ids, 1)]
            FROM summaries AS s, (SELECT array_agg(id ORDER BY id) AS ids FROM specialties) AS sp
            WHERE s.id LIKE :prefix || '%'
            """
        ),
        {"prefix": HISTORY_PREFIX},
    )
    return former


def _drop_secondary(conn: Connection) -> list[str]:
    """Drop the ledger tables' constraints (but their primary keys) and other indexes; return the
    statements that recreate them, constraints first (a unique constraint brings its index)."""
    tables = list(LEDGER_TABLES)
    constraints = conn.execute(
        text(
            """
            SELECT c.conrelid::regclass::text, c.conname, pg_get_constraintdef(c.oid), c.contype
            FROM pg_constraint AS c
            WHERE c.conrelid = ANY(CAST(:t AS regclass[])) AND c.contype <> 'p'
            """
        ),
        {"t": tables},
    ).all()
    indexes = conn.execute(
        text(
            """
            SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid)
            FROM pg_index AS i
            WHERE i.indrelid = ANY(CAST(:t AS regclass[])) AND NOT i.indisprimary
              AND NOT EXISTS (SELECT 1 FROM pg_constraint AS c WHERE c.conindid = i.indexrelid)
            """
        ),
        {"t": tables},
    ).all()
    # Foreign keys between the ledger tables last: they need the referenced side's unique index.
    constraints = sorted(constraints, key=lambda c: c[3] == "f")
    for table, name, _, _ in sorted(constraints, key=lambda c: c[3] != "f"):
        conn.execute(text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for name, _ in indexes:
        conn.execute(text(f"DROP INDEX {name}"))
    return [f'ALTER TABLE {t} ADD CONSTRAINT "{n}" {d}' for t, n, d, _ in constraints] + [d for _, d in indexes]


def _one_day(conn: Connection, spec: HistorySpec, age: int, period_key: str, slot: datetime) -> dict[str, int]:
    """The digest of the day ``age`` days before today's period: issue, lists, deliveries, clicks."""
    at = slot.astimezone(UTC).replace(tzinfo=None)
    issue_id = conn.scalar(
        text(
            """
            INSERT INTO issues (kind, status, subject, preheader, intro, planned_at, sent_at, created_at,
                                dispatched_at, timezone, audience_all)
            VALUES ('digest', 'sent', :subject, '', '', :at, :at + interval '15 minutes', :at, :at, 'UTC', true)
            RETURNING id
            """
        ),
        {"subject": f"Evidence digest {at:%Y-%m-%d %H:%M} UTC", "at": at},
    )
    params = {"issue": issue_id, "age": age, "period": period_key, "at": at, "prefix": f"{HISTORY_PREFIX}{age}-"}
    params |= {"per_day": spec.summaries_per_day, "items": spec.items_per_digest, "click_rate": spec.click_rate}
    selections = conn.execute(
        text("INSERT INTO selections (issue_id, key) SELECT :issue, key FROM bench_history_keys ORDER BY n"),
        params,
    ).rowcount
    items = conn.execute(
        text(
            """
            INSERT INTO selection_items (selection_id, summary_id, position)
            SELECT s.id, :prefix || (1 + (k.n * 7 + p) % :per_day), p
            FROM selections AS s JOIN bench_history_keys AS k ON s.key = k.key,
                 generate_series(1, :items) AS p
            WHERE s.issue_id = :issue
            """
        ),
        params,
    ).rowcount
    before = conn.scalar(text("SELECT coalesce(max(id), 0) FROM deliveries")) or 0
    deliveries = conn.execute(
        text(
            """
            INSERT INTO deliveries (issue_id, subscriber_id, period_key, status, variant_key, attempts, message_id,
                                    provider_message_id, error, created_at, sent_at, selection_id)
            SELECT :issue, m.subscriber_id, :period, CASE WHEN bounce THEN 'failed' ELSE 'sent' END, 'v' || k.n, 1,
                   '<' || :issue || '.' || m.subscriber_id || '@digest.example.org>',
                   '<' || :issue || '.' || m.subscriber_id || '@digest.example.org>',
                   CASE WHEN bounce THEN 'smtp: 550 5.1.1 mailbox unavailable' END,
                   :at, :at + (row_number() OVER (ORDER BY s.id, m.subscriber_id)) * interval '5 milliseconds', s.id
            FROM bench_history_members AS m
            JOIN bench_history_keys AS k ON k.key = m.key
            JOIN selections AS s ON s.issue_id = :issue AND s.key = m.key,
                 LATERAL (SELECT m.bounced AND m.last_age = :age AS bounce) AS b
            WHERE m.last_age <= :age AND m.first_age >= :age
            ORDER BY s.id, m.subscriber_id
            """
        ),
        params,
    ).rowcount
    clicks = conn.execute(
        text(
            """
            INSERT INTO clicks (delivery_id, url, at)
            SELECT d.id, 'https://evidence.example.org/summaries/' || :prefix || (1 + d.id % :per_day),
                   d.sent_at + random() * interval '6 hours'
            FROM deliveries AS d
            WHERE d.id > :before AND d.status = 'sent' AND random() < :click_rate
            """
        ),
        {**params, "before": before},
    ).rowcount
    return {"deliveries": deliveries, "selections": selections, "selection_items": items, "clicks": clicks}
