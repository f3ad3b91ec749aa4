"""Generate the benchmark list in PostgreSQL with set-based SQL (``generate_series``), in seconds.

The list: ``subscribers`` active, confirmed daily subscribers (UTC, 07:00) spread over the first
``specialties`` seeded specialties, each choosing 1 to 3 of them (60/30/10 %), a fifth of them on the
patient edition; ``summaries`` summaries published over the last six days, each in one or two of
those specialties. Choices come from PostgreSQL's ``random()`` after ``setseed``, so every run with
the same sizes builds the same list.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import sessionmaker

from digest.db import session_scope
from digest.ingest.specialties import SPECIALTIES, seed_specialties
from digest.schema import upgrade

LOREM = (
    "Patients were randomised in a double-blind design across multiple centres; the primary "
    "outcome was assessed at twelve months by investigators unaware of allocation. "
)


@dataclass(frozen=True)
class ListSpec:
    subscribers: int = 100_000
    specialties: int = 20
    summaries: int = 300
    seed: float = 0.42


def with_schema(url: str, schema: str) -> str:
    """The URL with ``search_path`` set to ``schema`` (workers inherit it through DIGEST_DATABASE_URL)."""
    if schema == "public":
        return url
    return f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"


def ensure_database(url: str) -> None:
    """Create the benchmark's database when it does not exist yet (a fresh machine has only ``test``)."""
    target = make_url(url)
    name = target.database
    admin = create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if conn.scalar(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}) is None:
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()


def reset_schema(engine: Engine, schema: str = "public") -> None:
    """Drop everything in the benchmark schema and migrate it to head."""
    if not schema.isidentifier():
        raise ValueError(f"--schema must be a plain identifier, not {schema!r}")
    with engine.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    upgrade(engine)


def generate(engine: Engine, spec: ListSpec, now: datetime) -> None:
    """Build the list described by ``spec`` in an empty, migrated database (one transaction)."""
    if not 1 <= spec.specialties <= len(SPECIALTIES):
        raise ValueError(f"--specialties must be between 1 and {len(SPECIALTIES)}, not {spec.specialties}")
    with session_scope(sessionmaker(engine)) as session:
        seed_specialties(session)
        slugs = [slug for slug, _ in SPECIALTIES[: spec.specialties]]
        ids = list(
            session.execute(text("SELECT id FROM specialties WHERE slug = ANY(:s) ORDER BY id"), {"s": slugs}).scalars()
        )
        params = {
            "ids": ids,
            "k": len(ids),
            "now": now.replace(tzinfo=None),
            "joined": (now - timedelta(days=30)).replace(tzinfo=None),
        }
        session.execute(text("SELECT setseed(:seed)"), {"seed": spec.seed})
        session.execute(
            text(
                """
                INSERT INTO summaries (id, title, key_takeaway, summary, patient_summary, study_type, sample_size,
                                       evidence_level, study_published, outcomes, safety, source_url,
                                       published_at, created_at, updated_at)
                SELECT 'bench-' || g,
                       'Trial ' || g || ': treatment A versus usual care in adults with condition ' || (g % 37),
                       'Treatment A lowered the risk of the primary outcome by ' || (5 + g % 30)
                           || '% (HR 0.' || (60 + g % 35) || ').',
                       repeat(:lorem, 3),
                       'In plain words: people who had treatment A did better in study ' || g || '.',
                       (ARRAY['randomised controlled trial','cohort study','meta-analysis',
                              'case-control study'])[1 + g % 4],
                       100 + (g * 7919) % 20000,
                       1 + g % 5,
                       '2026-' || lpad((1 + g % 12)::text, 2, '0'),
                       json_build_array(json_build_object('name','Primary outcome','measure','HR','value',0.8,
                                                          'ci_low',0.7,'ci_high',0.9,'p','<0.001')),
                       'No excess of serious adverse events.',
                       'https://evidence.example.org/summaries/bench-' || g,
                       CAST(:now AS timestamp) - (g % 144) * interval '1 hour' - interval '10 minutes',
                       CAST(:now AS timestamp) - (g % 144) * interval '1 hour' - interval '10 minutes',
                       CAST(:now AS timestamp)
                FROM generate_series(1, :n) AS g
                """
            ),
            {**params, "n": spec.summaries, "lorem": LOREM},
        )
        session.execute(
            text(
                """
                INSERT INTO summary_specialties (summary_id, specialty_id)
                SELECT DISTINCT 'bench-' || g, (CAST(:ids AS int[]))[1 + s]
                FROM generate_series(1, :n) AS g,
                     LATERAL (VALUES (g % :k), (CASE WHEN g % 3 = 0 THEN (g * 7) % :k ELSE g % :k END)) AS v(s)
                """
            ),
            {**params, "n": spec.summaries},
        )
        session.execute(
            text(
                """
                INSERT INTO subscribers (id, email, name, cadence, timezone, send_hour, send_weekday, edition,
                                         status, created_at, confirmed_at)
                SELECT g, 'reader' || g || '@bench.example.org', 'Reader ' || g, 'daily', 'UTC', 7, 0,
                       CASE WHEN random() < 0.2 THEN 'patient' ELSE 'clinician' END,
                       'active', CAST(:joined AS timestamp), CAST(:joined AS timestamp)
                FROM generate_series(1, :n) AS g
                """
            ),
            {**params, "n": spec.subscribers},
        )
        session.execute(text("SELECT setval(pg_get_serial_sequence('subscribers', 'id'), :n)"), {"n": spec.subscribers})
        session.execute(
            text(
                """
                INSERT INTO subscriber_specialties (subscriber_id, specialty_id)
                SELECT DISTINCT s.id, (CAST(:ids AS int[]))[1 + floor(random() * :k)::int]
                FROM (SELECT g AS id, CASE WHEN r < 0.6 THEN 1 WHEN r < 0.9 THEN 2 ELSE 3 END AS picks
                      FROM (SELECT g, random() AS r FROM generate_series(1, :n) AS g) AS x) AS s,
                     LATERAL generate_series(1, s.picks) AS p
                """
            ),
            {**params, "n": spec.subscribers},
        )
    with engine.connect() as conn:
        conn.execution_options(isolation_level="AUTOCOMMIT").execute(text("ANALYZE"))
