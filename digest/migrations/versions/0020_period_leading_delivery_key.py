"""deliveries: the "one digest per reader per period" key leads with the period; no foreign key to subscribers

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

The foreign key from ``deliveries.subscriber_id`` to ``subscribers`` is dropped: its check takes a
row lock on the reader's subscribers row for every delivery planned (a WAL record and a dirtied page
each), which was half of planning a million readers (39 s of the INSERT against 19 s without it).
Planning selects the rows it inserts from ``subscribers`` in the same statement and subscribers are
never deleted (erasure anonymises and keeps the row), so the reference holds without the check.
Dropping a foreign key is a catalogue change; the downgrade adds it back NOT VALID, then validates
it (a scan that does not block writes).

Online on PostgreSQL: the new index is built with CREATE INDEX CONCURRENTLY (reads and writes go on
while it builds; on a year of 100k readers it takes minutes), then attached as the constraint and
the old one dropped, two catalogue changes that hold the table's lock for an instant. A build that
was interrupted leaves an INVALID index of that name; the upgrade drops it and builds again.
SQLite rebuilds the table (its lists are small).
"""

from alembic import op
from sqlalchemy import text

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


FK = "fk_deliveries_subscriber_id_subscribers"


def upgrade() -> None:
    _swap(NEW, OLD, ["period_key", "subscriber_id"])
    with op.batch_alter_table("deliveries") as batch:
        batch.drop_constraint(FK, type_="foreignkey")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            text(
                f"ALTER TABLE deliveries ADD CONSTRAINT {FK} FOREIGN KEY (subscriber_id) "
                "REFERENCES subscribers (id) ON DELETE CASCADE NOT VALID"
            )
        )
        op.execute(text(f"ALTER TABLE deliveries VALIDATE CONSTRAINT {FK}"))
    else:
        with op.batch_alter_table("deliveries") as batch:
            batch.create_foreign_key(FK, "subscribers", ["subscriber_id"], ["id"], ondelete="CASCADE")
    _swap(OLD, NEW, ["subscriber_id", "period_key"])
