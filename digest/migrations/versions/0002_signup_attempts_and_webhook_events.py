"""signup attempts and webhook events

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 13:21:29.544759
"""

import sqlalchemy as sa
from alembic import op

import digest.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signup_attempts",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("client", sa.String(length=64), nullable=False),
        sa.Column("confirmation_sent", sa.Boolean(), nullable=False),
        sa.Column("created_at", digest.db.UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_attempts")),
    )
    with op.batch_alter_table("signup_attempts", schema=None) as batch_op:
        batch_op.create_index("ix_signup_attempts_client_created_at", ["client", "created_at"], unique=False)
        batch_op.create_index("ix_signup_attempts_email_created_at", ["email", "created_at"], unique=False)

    op.create_table(
        "webhook_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("delivery_id", sa.Integer(), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("occurred_at", digest.db.UTCDateTime(), nullable=True),
        sa.Column("received_at", digest.db.UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_webhook_events_delivery_id_deliveries"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_events")),
        sa.UniqueConstraint("provider", "event_id", name=op.f("uq_webhook_events_provider_event_id")),
    )
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_webhook_events_delivery_id"), ["delivery_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("webhook_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_webhook_events_delivery_id"))

    op.drop_table("webhook_events")
    with op.batch_alter_table("signup_attempts", schema=None) as batch_op:
        batch_op.drop_index("ix_signup_attempts_email_created_at")
        batch_op.drop_index("ix_signup_attempts_client_created_at")

    op.drop_table("signup_attempts")
