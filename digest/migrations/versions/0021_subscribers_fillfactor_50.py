"""subscribers: fillfactor 50, room on every page for a new version of each of its rows

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 04:30:00

Planning stamps ``last_digest_at`` on every subscriber it served, in one UPDATE. 0010 kept a fifth
of each page free, which holds a new version of only a quarter of the page's rows: the other three
quarters moved to another page with a new entry in each of the table's indexes (measured: 455k of
3M stamps were HOT). Half of each page free holds a new version of every row, so the whole stamp is
HOT, and yesterday's versions are pruned before the next one. On a million readers the stamp took
10.7 s at fillfactor 80 and 4.6 s at 50 (docs/scaling.md). The table takes twice the pages, which is
what daily updates of every row converge to anyway. The setting applies to pages written from now
on; ``VACUUM FULL subscribers`` (or pg_repack, online) rewrites the existing ones. PostgreSQL only.
"""

from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE subscribers SET (fillfactor = 50)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE subscribers SET (fillfactor = 80)")
