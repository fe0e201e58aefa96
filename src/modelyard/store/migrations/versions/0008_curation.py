"""curation: each dataset item's split and the fingerprint of its input

Revision ID: 0008_curation
Revises: 0007_answers
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

revision = "0008_curation"
down_revision = "0007_answers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dataset_items") as table:
        table.add_column(sa.Column("split", sa.String(16), nullable=True))
        table.add_column(sa.Column("fingerprint", sa.String(64), nullable=True))
    op.create_index("ix_dataset_items_fingerprint", "dataset_items", ["fingerprint"])


def downgrade() -> None:
    op.drop_index("ix_dataset_items_fingerprint", "dataset_items")
    with op.batch_alter_table("dataset_items") as table:
        table.drop_column("fingerprint")
        table.drop_column("split")
