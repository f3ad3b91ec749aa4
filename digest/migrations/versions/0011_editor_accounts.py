"""editors: disabled flag and session version instead of lockout counters

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 07:40:00

Logins are throttled per client and per address (token buckets, no lockout), so the failed-login
count and the lock time go. ``disabled`` lets an operator shut an account (``digest editors
disable``); ``session_version`` is carried in the session cookie and raised at logout, password
change and disable, which ends every session issued before.
"""

import sqlalchemy as sa
from alembic import op

import digest.db

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("editors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column("session_version", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_column("failed_logins")
        batch_op.drop_column("locked_until")


def downgrade() -> None:
    with op.batch_alter_table("editors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locked_until", digest.db.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column("failed_logins", sa.Integer(), server_default="0", nullable=False))
        batch_op.drop_column("session_version")
        batch_op.drop_column("disabled")
