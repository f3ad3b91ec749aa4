"""Alembic on SQLite and PostgreSQL: upgrade head, downgrade base, upgrade head again, and the models
agree with what the migrations build (autogenerate finds nothing to add).

PostgreSQL runs in a schema of its own, so the database the other tests share is left alone.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import IntegrityError

from digest.db import make_engine
from digest.models import Base
from digest.schema import alembic_config, downgrade, is_current, upgrade
from tests.conftest import PG_URL, require

SCHEMA = "digest_migration_check"


def _postgres() -> Iterator[Engine]:
    assert PG_URL
    admin = make_engine(PG_URL)
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    engine = make_engine(PG_URL, connect_args={"options": f"-csearch_path={SCHEMA}"})
    yield engine
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
    admin.dispose()


@pytest.fixture(params=["sqlite"] + (["postgresql"] if PG_URL else []))
def empty_engine(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on an empty database (PostgreSQL: an empty schema first on the search path)."""
    if request.param == "postgresql":
        yield from _postgres()
    else:
        engine = make_engine(f"sqlite:///{tmp_path / 'migrations.db'}")
        yield engine
        engine.dispose()


def _tables(engine: Engine) -> set[str]:
    return set(inspect(engine).get_table_names()) - {"alembic_version"}


def _differences(engine: Engine) -> list[object]:
    with engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        return list(compare_metadata(context, Base.metadata))


def test_upgrade_downgrade_upgrade(empty_engine: Engine) -> None:
    model_tables = set(Base.metadata.tables)

    upgrade(empty_engine)
    assert is_current(empty_engine)
    assert _tables(empty_engine) == model_tables

    downgrade(empty_engine, "base")
    assert _tables(empty_engine) == set()
    assert not is_current(empty_engine)

    upgrade(empty_engine)
    assert is_current(empty_engine)
    assert _tables(empty_engine) == model_tables
    assert _differences(empty_engine) == []


def test_each_revision_downgrades_to_the_one_before(empty_engine: Engine) -> None:
    """Step down one revision at a time from head and back up: every downgrade works on its own."""
    script = ScriptDirectory.from_config(alembic_config(str(empty_engine.url)))
    revisions = [r.revision for r in script.walk_revisions()]  # head first
    upgrade(empty_engine)
    for revision in revisions[1:]:
        downgrade(empty_engine, revision)
        with empty_engine.connect() as conn:
            assert MigrationContext.configure(conn).get_current_revision() == revision
    assert _differences(empty_engine), "below head the models are ahead: the comparison must see it"
    upgrade(empty_engine)
    assert _differences(empty_engine) == []


# Rows written with the columns of old schema versions (0004 and later), in raw SQL.
SUBSCRIBER_A = text(
    "INSERT INTO subscribers (id, email, name, cadence, timezone, send_hour, send_weekday, edition, status, "
    "created_at) VALUES (1, 'a@example.org', 'A', 'daily', 'UTC', 7, 0, 'clinician', 'active', '2026-11-01')"
)
DELIVERY = text(
    "INSERT INTO deliveries (id, issue_id, subscriber_id, period_key, status, variant_key, attempts, "
    "created_at) VALUES (:d, :d, 1, :p, 'sent', '', 1, '2026-11-01')"
)


def test_0007_keeps_what_deliveries_carried(empty_engine: Engine) -> None:
    """delivery_items move to one selection per delivery and back, positions and all: "nothing
    twice" must still see what was sent before the upgrade."""
    upgrade(empty_engine, "0006")
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO issues (id, kind, status, subject, preheader, intro, created_at, timezone, audience_all) "
                "VALUES (1, 'digest', 'sent', 's', '', '', '2026-11-01', 'UTC', true), "
                "(2, 'digest', 'sent', 's', '', '', '2026-11-02', 'UTC', true)"
            )
        )
        conn.execute(SUBSCRIBER_A)
        for sid in ("s1", "s2"):
            conn.execute(
                text(
                    "INSERT INTO summaries (id, title, key_takeaway, summary, study_type, outcomes, source_url, "
                    "published_at, created_at, updated_at) VALUES (:id, 't', 'k', 's', 'x', '[]', 'u', "
                    "'2026-11-01', '2026-11-01', '2026-11-01')"
                ),
                {"id": sid},
            )
        for delivery_id in (1, 2):
            conn.execute(DELIVERY, {"d": delivery_id, "p": f"daily:2026-11-0{delivery_id}"})
        conn.execute(
            text("INSERT INTO delivery_items (delivery_id, summary_id, position) VALUES (1, 's2', 1), (1, 's1', 2)")
        )
    upgrade(empty_engine)
    carried = "SELECT d.id, i.summary_id, i.position FROM deliveries d JOIN {} i ON {} ORDER BY d.id, i.position"
    with empty_engine.connect() as conn:
        rows = conn.execute(text(carried.format("selection_items", "i.selection_id = d.selection_id"))).all()
        assert [tuple(r) for r in rows] == [(1, "s2", 1), (1, "s1", 2)]
        assert conn.execute(text("SELECT selection_id FROM deliveries WHERE id = 2")).scalar() is None
    with empty_engine.begin() as conn:  # new selections get fresh ids after the copied ones
        conn.execute(text("INSERT INTO selections (issue_id, key) VALUES (1, 'new')"))
    downgrade(empty_engine, "0006")
    with empty_engine.connect() as conn:
        rows = conn.execute(text(carried.format("delivery_items", "i.delivery_id = d.id"))).all()
        assert [tuple(r) for r in rows] == [(1, "s2", 1), (1, "s1", 2)]


def test_upgrading_keeps_every_row(empty_engine: Engine) -> None:
    """Migrations that rebuild a table (SQLite copies it) keep the rows that refer to it: a
    delivery planned under 0004 is still there, with its click, after upgrading to head."""
    upgrade(empty_engine, "0004")
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO issues (id, kind, status, subject, preheader, intro, created_at) "
                "VALUES (1, 'digest', 'sent', 's', '', '', '2026-11-01')"
            )
        )
        conn.execute(SUBSCRIBER_A)
        conn.execute(DELIVERY, {"d": 1, "p": "daily:2026-11-01"})
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar() == 1
        assert conn.execute(text("SELECT count(*) FROM issues")).scalar() == 1


def test_the_ledger_tables_keep_the_room_their_updates_need() -> None:
    """On PostgreSQL (a storage parameter: SQLite has none) the migrations and the models create
    ``subscribers`` with fillfactor 50, so the watermark stamp of each digest stays on its page (a
    HOT update; tests/unit/selection/test_planning_plans.py counts them), and ``deliveries`` with
    fillfactor 90, so a day's planned rows are appended rather than put in the leftovers of the
    history's pages (the same file follows where they land)."""
    require(
        PG_URL is not None,
        "PostgreSQL (DIGEST_TEST_DATABASE_URL)",
        "set DIGEST_TEST_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/test",
    )
    for empty_engine in _postgres():
        _check_fillfactors(empty_engine)


def _check_fillfactors(empty_engine: Engine) -> None:
    def options() -> dict[str, list[str] | None]:
        with empty_engine.connect() as conn:
            rows = conn.execute(
                text(
                    "SELECT relname, reloptions FROM pg_class WHERE oid IN "
                    "(CAST('subscribers' AS regclass), CAST('deliveries' AS regclass))"
                )
            )
            return dict(rows.tuples().all())

    upgrade(empty_engine)
    assert options() == {"subscribers": ["fillfactor=50"], "deliveries": ["fillfactor=90"]}
    downgrade(empty_engine, "0021")
    assert options() == {"subscribers": ["fillfactor=50"], "deliveries": None}
    downgrade(empty_engine, "0020")
    assert options() == {"subscribers": ["fillfactor=80"], "deliveries": None}
    downgrade(empty_engine, "0009")
    assert options() == {"subscribers": None, "deliveries": None}
    downgrade(empty_engine, "base")
    with empty_engine.begin() as conn:
        Base.metadata.create_all(conn)
    assert options() == {"subscribers": ["fillfactor=50"], "deliveries": ["fillfactor=90"]}


def test_0020_moves_the_one_digest_per_period_key_and_keeps_its_guarantee(empty_engine: Engine) -> None:
    """The (subscriber_id, period_key) key becomes (period_key, subscriber_id) on a ledger with rows:
    they are all there, a second delivery to the same reader in the same period is still refused,
    and on PostgreSQL an index left INVALID by an interrupted concurrent build is built again."""
    upgrade(empty_engine, "0019")
    with empty_engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO issues (id, kind, status, subject, preheader, intro, created_at, timezone, audience_all) "
                "VALUES (1, 'digest', 'sent', 's', '', '', '2026-11-01', 'UTC', true), "
                "(2, 'digest', 'sent', 's', '', '', '2026-11-02', 'UTC', true), "
                "(3, 'digest', 'sent', 's', '', '', '2026-11-02', 'UTC', true)"
            )
        )
        conn.execute(SUBSCRIBER_A)
        for delivery_id in (1, 2):
            conn.execute(DELIVERY, {"d": delivery_id, "p": f"daily:2026-11-0{delivery_id}"})
        if conn.dialect.name == "postgresql":  # what a build stopped half-way leaves behind
            conn.execute(text("CREATE INDEX uq_deliveries_period_key_subscriber_id ON deliveries (issue_id)"))
            conn.execute(
                text(
                    "UPDATE pg_index SET indisvalid = false "
                    "WHERE indexrelid = 'uq_deliveries_period_key_subscriber_id'::regclass"
                )
            )
    upgrade(empty_engine)
    assert _differences(empty_engine) == []
    names = {u["name"] for u in inspect(empty_engine).get_unique_constraints("deliveries")}
    assert "uq_deliveries_period_key_subscriber_id" in names
    assert "uq_deliveries_subscriber_id_period_key" not in names
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM deliveries")).scalar() == 2
    with pytest.raises(IntegrityError), empty_engine.begin() as conn:
        conn.execute(DELIVERY.bindparams(d=3, p="daily:2026-11-02"))
    downgrade(empty_engine, "0019")
    with pytest.raises(IntegrityError), empty_engine.begin() as conn:
        conn.execute(DELIVERY.bindparams(d=3, p="daily:2026-11-02"))
