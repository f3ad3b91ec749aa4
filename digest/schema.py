"""Create or migrate the database schema with Alembic (``digest init``), and check it is current."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

from digest.resources import MIGRATIONS_LOCATION


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", MIGRATIONS_LOCATION)
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Run ``alembic upgrade`` on the engine's database."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with _migrating(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def downgrade(engine: Engine, revision: str = "base") -> None:
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with _migrating(engine) as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, revision)


@contextmanager
def _migrating(engine: Engine) -> Iterator[Connection]:
    """The connection the migrations run on. PostgreSQL: outside any transaction, as Alembic runs each
    migration in a transaction of its own (a migration that builds an index with CREATE INDEX
    CONCURRENTLY commits around it, which it cannot do inside one). SQLite: one transaction for all
    of them, with foreign keys off while it runs.

    SQLite alters a table by copying it and dropping the original, and with foreign keys on, that
    DROP deletes (ON DELETE CASCADE) every row referring to it: upgrading ``issues`` would empty
    ``deliveries``. SQLite's documented procedure: keys off outside the transaction, alter, then
    ``PRAGMA foreign_key_check`` before the commit, so a migration that broke a reference fails.
    """
    with engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            yield conn
            conn.commit()
            return
        raw = conn.connection.dbapi_connection
        assert raw is not None
        raw.execute("PRAGMA foreign_keys=OFF")  # no transaction is open yet: it takes effect
        try:
            with conn.begin():
                yield conn
                broken = conn.exec_driver_sql("PRAGMA foreign_key_check").all()
                if broken:
                    raise RuntimeError(
                        f"the migration left rows pointing at nothing (table, rowid, parent): {broken[:5]}"
                    )
        finally:
            raw.execute("PRAGMA foreign_keys=ON")


def is_current(engine: Engine) -> bool:
    """True when the database is at the newest migration."""
    heads = set(ScriptDirectory.from_config(alembic_config(str(engine.url))).get_heads())
    with engine.connect() as conn:
        return set(MigrationContext.configure(conn).get_current_heads()) == heads
