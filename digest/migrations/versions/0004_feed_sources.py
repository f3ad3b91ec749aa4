"""feed sources: RSS/Atom/JSON Feed URLs polled for summaries

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 13:22:06.086449
"""

import sqlalchemy as sa
from alembic import op

import digest.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "feed_sources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("specialties", sa.JSON(), nullable=False),
        sa.Column("etag", sa.String(length=500), nullable=True),
        sa.Column("last_modified", sa.String(length=100), nullable=True),
        sa.Column("last_polled_at", digest.db.UTCDateTime(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("created_at", digest.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("status IN ('new', 'ok', 'partial', 'error')", name=op.f("ck_feed_sources_status")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_feed_sources")),
        sa.UniqueConstraint("url", name=op.f("uq_feed_sources_url")),
    )


def downgrade() -> None:
    op.drop_table("feed_sources")
