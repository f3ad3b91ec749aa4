"""digest_flow: the pause switch of the automatic cadence digests; editors.disabled

Revision ID: 0013
Revises: 0010
Create Date: 2026-12-05 07:20:00

One row (id 1) the dispatcher reads before planning a digest period: while ``paused`` no period is
planned; resuming plans the current period on the next tick (each subscriber once, as always).
``editors.disabled``: an account an editor shut from the dashboard cannot log in (the same column
as issue 17's migration adds; keep one of the two at merge).
"""

from alembic import op
import sqlalchemy as sa
import digest.db


revision = "0013"
down_revision = "0010"
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
    with op.batch_alter_table("editors", schema=None) as batch_op:
        batch_op.add_column(sa.Column("disabled", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("editors", schema=None) as batch_op:
        batch_op.drop_column("disabled")
    op.drop_table("digest_flow")
