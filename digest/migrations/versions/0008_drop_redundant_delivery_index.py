"""deliveries: drop the index on subscriber_id alone

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 18:05:00

The unique constraint on (subscriber_id, period_key) starts with subscriber_id and serves every
lookup by subscriber (the unsubscribe's cancel, planning's history) as well. The extra index was
one more index written for each of a message's three row versions (claim, lock, outcome).
"""

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_deliveries_subscriber_id", table_name="deliveries")


def downgrade() -> None:
    op.create_index("ix_deliveries_subscriber_id", "deliveries", ["subscriber_id"], unique=False)
