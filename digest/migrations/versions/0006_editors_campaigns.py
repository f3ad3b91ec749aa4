"""editors, campaign audience and pins, click-throughs

Revision ID: 0006
Revises: 0004
Create Date: 2026-11-27 13:40:00
"""

import sqlalchemy as sa
from alembic import op

import digest.db

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "editors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("created_at", digest.db.UTCDateTime(), nullable=False),
        sa.Column("last_login_at", digest.db.UTCDateTime(), nullable=True),
        sa.Column("failed_logins", sa.Integer(), nullable=False),
        sa.Column("locked_until", digest.db.UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_editors")),
        sa.UniqueConstraint("email", name=op.f("uq_editors_email")),
    )
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.add_column(sa.Column("editor_id", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("timezone", sa.String(length=64), server_default="UTC", nullable=False))
        batch_op.add_column(sa.Column("audience_all", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("dispatched_at", digest.db.UTCDateTime(), nullable=True))
        batch_op.create_foreign_key(
            batch_op.f("fk_issues_editor_id_editors"), "editors", ["editor_id"], ["id"], ondelete="SET NULL"
        )
    op.create_table(
        "issue_specialties",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("specialty_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_specialties_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["specialty_id"],
            ["specialties.id"],
            name=op.f("fk_issue_specialties_specialty_id_specialties"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("issue_id", "specialty_id", name=op.f("pk_issue_specialties")),
    )
    op.create_table(
        "issue_pins",
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("summary_id", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_issue_pins_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"], ["summaries.id"], name=op.f("fk_issue_pins_summary_id_summaries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("issue_id", "summary_id", name=op.f("pk_issue_pins")),
    )
    op.create_table(
        "clicks",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.String(length=2000), nullable=False),
        sa.Column("at", digest.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"], ["deliveries.id"], name=op.f("fk_clicks_delivery_id_deliveries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_clicks")),
    )
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_clicks_delivery_id"), ["delivery_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("clicks", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_clicks_delivery_id"))
    op.drop_table("clicks")
    op.drop_table("issue_pins")
    op.drop_table("issue_specialties")
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("fk_issues_editor_id_editors"), type_="foreignkey")
        batch_op.drop_column("dispatched_at")
        batch_op.drop_column("audience_all")
        batch_op.drop_column("timezone")
        batch_op.drop_column("editor_id")
    op.drop_table("editors")
