"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-27 13:15:51.036066
"""

import sqlalchemy as sa
from alembic import op

import digest.db

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "issues",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("subject", sa.String(length=300), nullable=False),
        sa.Column("preheader", sa.String(length=300), nullable=False),
        sa.Column("intro", sa.Text(), nullable=False),
        sa.Column("scheduled_at", digest.db.UTCDateTime(), nullable=True),
        sa.Column("planned_at", digest.db.UTCDateTime(), nullable=True),
        sa.Column("sent_at", digest.db.UTCDateTime(), nullable=True),
        sa.Column("created_at", digest.db.UTCDateTime(), nullable=False),
        sa.CheckConstraint("kind IN ('digest', 'campaign')", name=op.f("ck_issues_kind")),
        sa.CheckConstraint(
            "status IN ('draft', 'scheduled', 'sending', 'paused', 'sent', 'cancelled')", name=op.f("ck_issues_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_issues")),
    )
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_issues_status"), ["status"], unique=False)

    op.create_table(
        "specialties",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=64), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_specialties")),
        sa.UniqueConstraint("slug", name=op.f("uq_specialties_slug")),
    )
    op.create_table(
        "subscribers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("cadence", sa.String(length=16), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("send_hour", sa.Integer(), nullable=False),
        sa.Column("send_weekday", sa.Integer(), nullable=False),
        sa.Column("edition", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", digest.db.UTCDateTime(), nullable=False),
        sa.Column("confirmed_at", digest.db.UTCDateTime(), nullable=True),
        sa.Column("unsubscribed_at", digest.db.UTCDateTime(), nullable=True),
        sa.Column("last_digest_at", digest.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint("cadence IN ('daily', 'weekly')", name=op.f("ck_subscribers_cadence")),
        sa.CheckConstraint("edition IN ('clinician', 'patient')", name=op.f("ck_subscribers_edition")),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'paused', 'unsubscribed')", name=op.f("ck_subscribers_status")
        ),
        sa.CheckConstraint("send_hour BETWEEN 0 AND 23", name=op.f("ck_subscribers_send_hour")),
        sa.CheckConstraint("send_weekday BETWEEN 0 AND 6", name=op.f("ck_subscribers_send_weekday")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_subscribers")),
        sa.UniqueConstraint("email", name=op.f("uq_subscribers_email")),
    )
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscribers_status"), ["status"], unique=False)

    op.create_table(
        "summaries",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("title", sa.String(length=500), nullable=False),
        sa.Column("key_takeaway", sa.Text(), nullable=False),
        sa.Column("summary", sa.Text(), nullable=True),
        sa.Column("patient_summary", sa.Text(), nullable=True),
        sa.Column("study_type", sa.String(length=100), nullable=True),
        sa.Column("sample_size", sa.Integer(), nullable=True),
        sa.Column("evidence_level", sa.Integer(), nullable=True),
        sa.Column("study_published", sa.String(length=32), nullable=True),
        sa.Column("outcomes", sa.JSON(), nullable=False),
        sa.Column("safety", sa.Text(), nullable=True),
        sa.Column("source_url", sa.String(length=2000), nullable=True),
        sa.Column("published_at", digest.db.UTCDateTime(), nullable=False),
        sa.Column("created_at", digest.db.UTCDateTime(), nullable=False),
        sa.Column("updated_at", digest.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_summaries")),
    )
    with op.batch_alter_table("summaries", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_summaries_published_at"), ["published_at"], unique=False)

    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", digest.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_suppressions")),
        sa.UniqueConstraint("value", name=op.f("uq_suppressions_value")),
    )
    op.create_table(
        "deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("period_key", sa.String(length=32), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("variant_key", sa.String(length=64), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("lease_until", digest.db.UTCDateTime(), nullable=True),
        sa.Column("claim_token", sa.String(length=32), nullable=True),
        sa.Column("message_id", sa.String(length=255), nullable=True),
        sa.Column("provider_message_id", sa.String(length=255), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", digest.db.UTCDateTime(), nullable=False),
        sa.Column("sent_at", digest.db.UTCDateTime(), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'cancelled')", name=op.f("ck_deliveries_status")
        ),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_deliveries_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_deliveries_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_deliveries")),
        sa.UniqueConstraint("issue_id", "subscriber_id", name=op.f("uq_deliveries_issue_id_subscriber_id")),
        sa.UniqueConstraint("subscriber_id", "period_key", name=op.f("uq_deliveries_subscriber_id_period_key")),
    )
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.create_index("ix_deliveries_issue_status", ["issue_id", "status"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_provider_message_id"), ["provider_message_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_deliveries_subscriber_id"), ["subscriber_id"], unique=False)

    op.create_table(
        "subscriber_specialties",
        sa.Column("subscriber_id", sa.Integer(), nullable=False),
        sa.Column("specialty_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["specialty_id"],
            ["specialties.id"],
            name=op.f("fk_subscriber_specialties_specialty_id_specialties"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["subscriber_id"],
            ["subscribers.id"],
            name=op.f("fk_subscriber_specialties_subscriber_id_subscribers"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("subscriber_id", "specialty_id", name=op.f("pk_subscriber_specialties")),
    )
    with op.batch_alter_table("subscriber_specialties", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_subscriber_specialties_specialty_id"), ["specialty_id"], unique=False)

    op.create_table(
        "summary_specialties",
        sa.Column("summary_id", sa.String(length=200), nullable=False),
        sa.Column("specialty_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["specialty_id"],
            ["specialties.id"],
            name=op.f("fk_summary_specialties_specialty_id_specialties"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"],
            ["summaries.id"],
            name=op.f("fk_summary_specialties_summary_id_summaries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("summary_id", "specialty_id", name=op.f("pk_summary_specialties")),
    )
    with op.batch_alter_table("summary_specialties", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_summary_specialties_specialty_id"), ["specialty_id"], unique=False)

    op.create_table(
        "delivery_items",
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("summary_id", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_delivery_items_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"], ["summaries.id"], name=op.f("fk_delivery_items_summary_id_summaries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("delivery_id", "summary_id", name=op.f("pk_delivery_items")),
    )


def downgrade() -> None:
    op.drop_table("delivery_items")
    with op.batch_alter_table("summary_specialties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_summary_specialties_specialty_id"))

    op.drop_table("summary_specialties")
    with op.batch_alter_table("subscriber_specialties", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscriber_specialties_specialty_id"))

    op.drop_table("subscriber_specialties")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_deliveries_subscriber_id"))
        batch_op.drop_index(batch_op.f("ix_deliveries_provider_message_id"))
        batch_op.drop_index("ix_deliveries_issue_status")

    op.drop_table("deliveries")
    op.drop_table("suppressions")
    with op.batch_alter_table("summaries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_summaries_published_at"))

    op.drop_table("summaries")
    with op.batch_alter_table("subscribers", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_subscribers_status"))

    op.drop_table("subscribers")
    op.drop_table("specialties")
    with op.batch_alter_table("issues", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_issues_status"))

    op.drop_table("issues")
