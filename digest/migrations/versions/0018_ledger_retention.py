"""ledger retention: the figures of pruned issues and summaries (``digest prune --keep DAYS``)

Revision ID: 0018
Revises: 0016
Create Date: 2026-12-05 07:30:00

Three new tables and nothing else: the ledger tables are not converted (docs/scaling.md explains
why deliveries are not partitioned), so the upgrade is instant on a ledger of any size and needs no
maintenance window. ``digest prune --keep DAYS`` then summarises old issues into these tables and
deletes their rows in short batches, online, issue by issue.
"""

import sqlalchemy as sa
from alembic import op

import digest.db

revision = "0018"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issue_figures",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        *(
            sa.Column(name, sa.Integer(), nullable=False)
            for name in (
                "recipients",
                "sent",
                "failed",
                "cancelled",
                "pending",
                "bounced",
                "complaints",
                "unsubscribes",
                "clicks",
                "unique_clicks",
            )
        ),
        sa.Column("summarised_at", digest.db.UTCDateTime(), nullable=False),
        sa.Column("deleted_at", digest.db.UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_figures_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("issue_id", name=op.f("pk_issue_figures")),
    )
    op.create_table(
        "issue_figure_points",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("start", digest.db.UTCDateTime(), nullable=False),
        sa.Column("sent", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_figure_points_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("issue_id", "start", name=op.f("pk_issue_figure_points")),
    )
    op.create_table(
        "summary_figures",
        sa.Column("summary_id", sa.String(length=200), nullable=False),
        sa.Column("sends", sa.Integer(), nullable=False),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["summary_id"], ["summaries.id"], name=op.f("fk_summary_figures_summary_id_summaries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("summary_id", name=op.f("pk_summary_figures")),
    )


def downgrade() -> None:
    op.drop_table("summary_figures")
    op.drop_table("issue_figure_points")
    op.drop_table("issue_figures")
