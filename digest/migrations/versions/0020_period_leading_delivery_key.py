"""deliveries: the "one digest per reader per period" key leads with the period

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


def upgrade() -> None:
    _swap(NEW, OLD, ["period_key", "subscriber_id"])


def downgrade() -> None:
    _swap(OLD, NEW, ["subscriber_id", "period_key"])
