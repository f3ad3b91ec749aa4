"""corrections: summary versions, the versions deliveries carried, corrections, alert and relevance preferences

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 07:10:00

Summaries get ``version``, ``status`` and ``correction_note``; ``summary_versions`` keeps each
version (version 1 is written for every existing summary). ``carried_versions`` records, per
rendered variant, the version of each summary it carried; the variants already sent are recorded
as having carried version 1 in their subscriber's edition. ``corrections`` and
``folded_corrections`` hold what readers of an earlier version must be told. Issues may now be
correction notices or safety alerts. Subscribers get the "safety alerts" preference (on) and the
relevance controls (minimum evidence level, study types, at most N per digest).
"""

import sqlalchemy as sa
from alembic import op

from digest.db import UTCDateTime

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('digest', 'campaign')"
NEW_KINDS = "kind IN ('digest', 'campaign', 'correction', 'alert')"


def upgrade() -> None:
    with op.batch_alter_table("summaries") as batch_op:
        batch_op.add_column(sa.Column("version", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("status", sa.String(length=16), server_default="published", nullable=False))
        batch_op.add_column(sa.Column("correction_note", sa.Text(), nullable=True))
    with op.batch_alter_table("subscribers") as batch_op:
        batch_op.add_column(sa.Column("safety_alerts", sa.Boolean(), server_default=sa.true(), nullable=False))
        batch_op.add_column(sa.Column("min_evidence_level", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("study_types", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("max_items", sa.Integer(), nullable=True))
    with op.batch_alter_table("issues") as batch_op:
        batch_op.drop_constraint(op.f("ck_issues_kind"), type_="check")
        batch_op.create_check_constraint("kind", NEW_KINDS)

    op.create_table(
        "summary_versions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("summary_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("changed", sa.JSON(), nullable=False),
        sa.Column("previous", sa.JSON(), nullable=False),
        sa.Column("material", sa.Boolean(), nullable=False),
        sa.Column("severe", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("reviewed", sa.Boolean(), nullable=False),
        sa.ForeignKeyConstraint(
            ["summary_id"], ["summaries.id"], name=op.f("fk_summary_versions_summary_id_summaries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_summary_versions")),
        sa.UniqueConstraint("summary_id", "version", name=op.f("uq_summary_versions_summary_id_version")),
    )
    op.create_index(op.f("ix_summary_versions_reviewed"), "summary_versions", ["reviewed"], unique=False)
    op.execute(
        "INSERT INTO summary_versions "
        "(summary_id, version, created_at, changed, previous, material, severe, status, urgent, reviewed) "
        "SELECT id, 1, created_at, '[]', '{}', false, false, 'published', false, true FROM summaries"
    )
    op.create_table(
        "carried_versions",
        sa.Column("variant_key", sa.String(length=64), nullable=False),
        sa.Column("summary_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("edition", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(
            ["summary_id"], ["summaries.id"], name=op.f("fk_carried_versions_summary_id_summaries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("variant_key", "summary_id", name=op.f("pk_carried_versions")),
    )
    op.create_index(op.f("ix_carried_versions_summary_id"), "carried_versions", ["summary_id"], unique=False)
    op.execute(
        "INSERT INTO carried_versions (variant_key, summary_id, version, edition) "
        "SELECT d.variant_key, i.summary_id, 1, MIN(s.edition) FROM deliveries d "
        "JOIN selection_items i ON i.selection_id = d.selection_id "
        "JOIN subscribers s ON s.id = d.subscriber_id "
        "WHERE d.status = 'sent' AND d.variant_key <> '' GROUP BY d.variant_key, i.summary_id"
    )
    op.create_table(
        "corrections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("summary_id", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("standalone", sa.Boolean(), nullable=False),
        sa.Column("changed", sa.Text(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("approved_at", UTCDateTime(), nullable=True),
        sa.Column("approved_by", sa.String(length=320), nullable=True),
        sa.Column("issue_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'sent', 'dismissed')", name=op.f("ck_corrections_status")
        ),
        sa.CheckConstraint("kind IN ('correction', 'retraction')", name=op.f("ck_corrections_kind")),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_corrections_issue_id_issues"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"], ["summaries.id"], name=op.f("fk_corrections_summary_id_summaries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_corrections")),
        sa.UniqueConstraint("issue_id", name=op.f("uq_corrections_issue_id")),
    )
    op.create_index(op.f("ix_corrections_status"), "corrections", ["status"], unique=False)
    op.create_index(op.f("ix_corrections_summary_id"), "corrections", ["summary_id"], unique=False)
    op.create_table(
        "folded_corrections",
        sa.Column("correction_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["correction_id"],
            ["corrections.id"],
            name=op.f("fk_folded_corrections_correction_id_corrections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_folded_corrections_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_folded_corrections_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("correction_id", "subscriber_id", name=op.f("pk_folded_corrections")),
    )
    op.create_index(op.f("ix_folded_corrections_subscriber_id"), "folded_corrections", ["subscriber_id"], unique=False)


def downgrade() -> None:
    op.drop_table("folded_corrections")
    op.drop_table("corrections")
    op.drop_table("carried_versions")
    op.drop_table("summary_versions")
    op.execute("DELETE FROM issues WHERE kind IN ('correction', 'alert')")
    with op.batch_alter_table("issues") as batch_op:
        batch_op.drop_constraint(op.f("ck_issues_kind"), type_="check")
        batch_op.create_check_constraint("kind", OLD_KINDS)
    with op.batch_alter_table("subscribers") as batch_op:
        batch_op.drop_column("max_items")
        batch_op.drop_column("study_types")
        batch_op.drop_column("min_evidence_level")
        batch_op.drop_column("safety_alerts")
    with op.batch_alter_table("summaries") as batch_op:
        batch_op.drop_column("correction_note")
        batch_op.drop_column("status")
        batch_op.drop_column("version")
