"""summaries.patient_title: an optional plain-language title for the patient edition

Revision ID: 0014
Revises: 0010
Create Date: 2026-12-05 07:40:00

Patient digests used the clinician title ("MASH", "TAVI", "DOACs") as subject and heading. A
record may now carry ``patient_title``; the patient edition uses it, falling back to ``title``.
"""

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("summaries") as batch:
        batch.add_column(sa.Column("patient_title", sa.String(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("summaries") as batch:
        batch.drop_column("patient_title")
