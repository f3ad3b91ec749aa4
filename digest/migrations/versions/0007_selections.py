"""selections: the summaries a delivery carries, stored once per distinct list

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-28 16:30:00

``delivery_items`` (8 rows per delivery) becomes ``selections`` + ``selection_items`` (8 rows per
distinct list) and ``deliveries.selection_id``. Existing items move over as one selection per
delivery (selection id = delivery id), so nothing already carried is forgotten.
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "selections",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issue_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["issue_id"], ["issues.id"], name=op.f("fk_selections_issue_id_issues"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_selections")),
        sa.UniqueConstraint("issue_id", "key", name=op.f("uq_selections_issue_id_key")),
    )
    op.create_table(
        "selection_items",
        sa.Column("selection_id", sa.Integer(), nullable=False),
        sa.Column("summary_id", sa.String(length=200), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["selection_id"],
            ["selections.id"],
            name=op.f("fk_selection_items_selection_id_selections"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["summary_id"], ["summaries.id"], name=op.f("fk_selection_items_summary_id_summaries"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("selection_id", "summary_id", name=op.f("pk_selection_items")),
    )
    with op.batch_alter_table("selection_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_selection_items_summary_id"), ["summary_id"], unique=False)
    # A plain ADD COLUMN, not a batch copy of the table: on SQLite, dropping the old ``deliveries``
    # with foreign keys on would cascade to every table that references it (clicks, delivery_items).
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "ALTER TABLE deliveries ADD COLUMN selection_id INTEGER "
            "CONSTRAINT fk_deliveries_selection_id_selections REFERENCES selections (id)"
        )
    else:
        op.add_column("deliveries", sa.Column("selection_id", sa.Integer(), nullable=True))
        op.create_foreign_key(
            op.f("fk_deliveries_selection_id_selections"), "deliveries", "selections", ["selection_id"], ["id"]
        )
    op.create_index(op.f("ix_deliveries_selection_id"), "deliveries", ["selection_id"], unique=False)

    op.execute(
        "INSERT INTO selections (id, issue_id, key) "
        "SELECT d.id, d.issue_id, 'delivery:' || CAST(d.id AS TEXT) FROM deliveries d "
        "WHERE EXISTS (SELECT 1 FROM delivery_items i WHERE i.delivery_id = d.id)"
    )
    op.execute(
        "INSERT INTO selection_items (selection_id, summary_id, position) "
        "SELECT delivery_id, summary_id, position FROM delivery_items"
    )
    op.execute("UPDATE deliveries SET selection_id = id WHERE id IN (SELECT id FROM selections)")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "SELECT setval(pg_get_serial_sequence('selections', 'id'), COALESCE(MAX(id), 1), MAX(id) IS NOT NULL) "
            "FROM selections"
        )
    op.drop_table("delivery_items")


def downgrade() -> None:
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
    # Through a table without foreign keys: on SQLite the batch copy of ``deliveries`` below drops
    # the old table, which would cascade to delivery_items.
    op.execute(
        "CREATE TABLE delivery_items_0007 AS SELECT d.id AS delivery_id, i.summary_id, i.position "
        "FROM deliveries d JOIN selection_items i ON i.selection_id = d.selection_id"
    )
    op.drop_index(op.f("ix_deliveries_selection_id"), table_name="deliveries")
    if op.get_bind().dialect.name != "sqlite":  # SQLite: the batch copy leaves it out with the column
        op.drop_constraint(op.f("fk_deliveries_selection_id_selections"), "deliveries", type_="foreignkey")
    with op.batch_alter_table("deliveries", schema=None) as batch_op:
        batch_op.drop_column("selection_id")
    op.execute("INSERT INTO delivery_items (delivery_id, summary_id, position) SELECT * FROM delivery_items_0007")
    op.drop_table("delivery_items_0007")
    with op.batch_alter_table("selection_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_selection_items_summary_id"))
    op.drop_table("selection_items")
    op.drop_table("selections")
