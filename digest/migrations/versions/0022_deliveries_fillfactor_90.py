"""deliveries: fillfactor 90, so that a day's planned rows are appended instead of scattered over the history

Revision ID: 0022
Revises: 0021
Create Date: 2026-12-06 13:30:00

A delivery is planned small (status pending, no Message-ID: about 100 bytes a tuple) and grows when
it is sent (the Message-ID twice, the time sent: about 164 bytes). A page of sent rows ends with a
leftover smaller than one sent row, and on every page that leftover fits one pending row. VACUUM
records those leftovers in the free space map, and planning's INSERT takes them: on a 30-day ledger
of 20,000 readers the day's 20,000 rows landed on 12,364 pages, all but 20 of them history pages,
each a random read and, after a checkpoint, a full-page image in the WAL (6.1 KB of WAL per row
against 1.1 KB on an empty ledger; 18.9 KB per message end to end on 365 days). The send then
moved each row away again, so the same leftovers were offered the next day.

With a fillfactor an INSERT takes a page only if the row leaves a tenth of the page free, so the
leftover of a full page (under 164 bytes) is never enough: the day's rows go to fresh pages or to
pages the prune and vacuum emptied (on that ledger: 275 pages, 1.1 KB of WAL per row). The tenth
also keeps the first sends of each page on that page. PostgreSQL only; it applies to every INSERT
from now on, so an existing ledger benefits at once without a rewrite.
"""

from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries SET (fillfactor = 90)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE deliveries RESET (fillfactor)")
