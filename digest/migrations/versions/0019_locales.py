"""locales: the language of a subscriber's emails and pages, and the language of a summary

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 09:00:00

Two columns with server defaults ('en': everything sent so far was English), so the upgrade is a
catalogue change on PostgreSQL (no table rewrite) and existing rows read as English.
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("subscribers") as batch:
        batch.add_column(sa.Column("locale", sa.String(length=8), server_default="en", nullable=False))
    with op.batch_alter_table("summaries") as batch:
        batch.add_column(sa.Column("language", sa.String(length=8), server_default="en", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("summaries") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("subscribers") as batch:
        batch.drop_column("locale")
