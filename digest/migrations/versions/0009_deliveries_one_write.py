"""deliveries: no claimed state; a message is one row write (locked and recorded in its batch)

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 19:00:00

Delivery used to claim a chunk's rows (``sending``, with a lease and a claim token), lock each
batch's rows again, and then record the outcome: three row versions per message. A batch's rows are
now locked by the statement that records them as sent, inside the transaction that sends them, so a
row is ``pending`` until the commit that makes it ``sent`` (or failed, or cancelled). Rows left
``sending`` by the old protocol (a worker stopped mid-chunk) go back to ``pending``, which is where
a run out lease would have put them.
"""

import sqlalchemy as sa
from alembic import op

import digest.db

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

_WITH_SENDING = "status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')"
_WITHOUT_SENDING = "status IN ('pending', 'sent', 'failed', 'cancelled')"


def upgrade() -> None:
    op.execute("UPDATE deliveries SET status = 'pending' WHERE status = 'sending'")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_deliveries_status"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_deliveries_status"), sa.text(_WITHOUT_SENDING))
        batch_op.drop_column("lease_until")
        batch_op.drop_column("claim_token")


def downgrade() -> None:
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claim_token", sa.String(length=32), nullable=True))
        batch_op.add_column(sa.Column("lease_until", digest.db.UTCDateTime(), nullable=True))
        batch_op.drop_constraint(batch_op.f("ck_deliveries_status"), type_="check")
        batch_op.create_check_constraint(batch_op.f("ck_deliveries_status"), sa.text(_WITH_SENDING))
