"""digest_flow: the pause switch of the automatic cadence digests

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 07:20:00

One row (id 1) the dispatcher reads before planning a digest period: while ``paused`` no period is
planned; resuming plans the current period on the next tick (each subscriber once, as always).
(``editors.disabled``, which the dashboard sets, comes with migration 0011.)
"""

import sqlalchemy as sa
from alembic import op

import digest.db

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "digest_flow",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("changed_at", digest.db.UTCDateTime(), nullable=False),
        sa.Column("editor_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["editor_id"], ["editors.id"], name=op.f("fk_digest_flow_editor_id_editors"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_digest_flow")),
    )


def downgrade() -> None:
    op.drop_table("digest_flow")
