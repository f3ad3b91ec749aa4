"""deliveries: the "one digest per reader per period" key leads with the period; no foreign keys

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 04:00:00

``UNIQUE (subscriber_id, period_key)`` becomes ``UNIQUE (period_key, subscriber_id)``: the same
guarantee, with a period's entries adjacent in the index. Led by the reader, every day's planning
wrote one entry on each reader's own leaf page, a random page per reader across the whole history:
on a year-old ledger that was a page read and a full-page image in the WAL per message (about 31 KB
per message, and planning 94.6 s against 3.9 s on an empty ledger, docs/scaling.md). The lookups
that started from the reader go issue by issue through ``(issue_id, subscriber_id)`` instead
(digest/ledger/readers.py).

The foreign keys from ``deliveries`` to ``subscribers``, ``issues`` and ``selections`` are dropped:
each check takes an index probe and a row lock on the referenced row for every delivery planned
(the subscriber's lock a WAL record and a dirtied page each). On a million readers the INSERT of the
day's rows took 39 s with them, 19 s without the subscriber's and 8.5 s without any in a bare
INSERT of the same rows. Planning inserts the rows from the issue, subscribers and lists it reads in
the same transaction, and none of those is deleted while a delivery points at it (models.py says
why), so the references hold without the checks. Dropping a foreign key is a catalogue change; the
downgrade adds them back NOT VALID, then validates them (a scan that does not block writes).

Online on PostgreSQL: the new index is built with CREATE INDEX CONCURRENTLY (reads and writes go on
while it builds; on a year of 100k readers it takes minutes), then attached as the constraint and
the old one dropped, two catalogue changes that hold the table's lock for an instant. A build that
was interrupted leaves an INVALID index of that name; the upgrade drops it and builds again.
SQLite rebuilds the table (its lists are small).
"""

from alembic import op
from sqlalchemy import text

from digest.db import NAMING_CONVENTION

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

OLD = "uq_deliveries_subscriber_id_period_key"
NEW = "uq_deliveries_period_key_subscriber_id"


def _swap(build: str, drop: str, columns: list[str]) -> None:
    if op.get_bind().dialect.name != "postgresql":
        with op.batch_alter_table("deliveries") as batch:
            batch.drop_constraint(drop, type_="unique")
            batch.create_unique_constraint(build, columns)
        return
    with op.get_context().autocommit_block():
        op.execute(text(f"DROP INDEX CONCURRENTLY IF EXISTS {build}"))
        op.execute(text(f"CREATE UNIQUE INDEX CONCURRENTLY {build} ON deliveries ({', '.join(columns)})"))
    op.execute(text(f"ALTER TABLE deliveries ADD CONSTRAINT {build} UNIQUE USING INDEX {build}"))
    op.execute(text(f"ALTER TABLE deliveries DROP CONSTRAINT {drop}"))


# name -> (column, referenced table, ON DELETE)
FOREIGN_KEYS = {
    "fk_deliveries_issue_id_issues": ("issue_id", "issues", "CASCADE"),
    "fk_deliveries_subscriber_id_subscribers": ("subscriber_id", "subscribers", "CASCADE"),
    "fk_deliveries_selection_id_selections": ("selection_id", "selections", None),
}


def upgrade() -> None:
    _swap(NEW, OLD, ["period_key", "subscriber_id"])
    # SQLite reflects a key declared on a column added by ALTER TABLE (0007) without its name: the
    # convention names it, as the models' metadata does.
    with op.batch_alter_table("deliveries", naming_convention=NAMING_CONVENTION) as batch:
        for name in FOREIGN_KEYS:
            batch.drop_constraint(name, type_="foreignkey")


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    with op.batch_alter_table("deliveries") as batch:
        for name, (column, table, ondelete) in FOREIGN_KEYS.items():
            if postgresql:
                on_delete = f" ON DELETE {ondelete}" if ondelete else ""
                op.execute(
                    text(
                        f"ALTER TABLE deliveries ADD CONSTRAINT {name} FOREIGN KEY ({column}) "
                        f"REFERENCES {table} (id){on_delete} NOT VALID"
                    )
                )
                op.execute(text(f"ALTER TABLE deliveries VALIDATE CONSTRAINT {name}"))
            else:
                batch.create_foreign_key(name, table, [column], ["id"], ondelete=ondelete)
    _swap(OLD, NEW, ["subscriber_id", "period_key"])
