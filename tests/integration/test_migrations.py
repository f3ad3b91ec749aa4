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

from digest.db import make_engine
from digest.models import Base
from digest.schema import alembic_config, downgrade, is_current, upgrade
from tests.conftest import PG_URL

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
