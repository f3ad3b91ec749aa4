"""transport circuit: transport_circuits, and why an issue is paused

Revision ID: 0012
Revises: 0010
Create Date: 2026-12-05 07:30:00

One row per transport: open while the connection or the account fails (sending issues paused with
the reason), when to probe next, and until when every worker holds back after a throttling reply.
``issues.paused_by`` / ``pause_reason`` say who paused an issue and why, so the circuit resumes only
the issues it paused.
"""

import sqlalchemy as sa
from alembic import op

from digest.db import UTCDateTime

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "transport_circuits",
        sa.Column("transport", sa.String(32), primary_key=True),
        sa.Column("state", sa.String(8), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("opened_at", UTCDateTime(), nullable=True),
        sa.Column("next_probe_at", UTCDateTime(), nullable=True),
        sa.Column("probe_seconds", sa.Integer(), nullable=False),
        sa.Column("throttled_until", UTCDateTime(), nullable=True),
        sa.CheckConstraint("state IN ('closed', 'open')", name="state"),
    )
    with op.batch_alter_table("issues") as batch:
        batch.add_column(sa.Column("paused_by", sa.String(16), nullable=True))
        batch.add_column(sa.Column("pause_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("issues") as batch:
        batch.drop_column("pause_reason")
        batch.drop_column("paused_by")
    op.drop_table("transport_circuits")
