"""datasets: named datasets with immutable, content-hashed versions

Revision ID: 0005_datasets
Revises: 0004_evaluate
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0005_datasets"
down_revision = "0004_evaluate"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "datasets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("source", sa.JSON, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.UniqueConstraint("name", "version", name="uq_dataset_version"),
    )
    op.create_index("ix_datasets_name", "datasets", ["name"])
    op.create_index("ix_datasets_sha256", "datasets", ["sha256"])
    op.create_table(
        "dataset_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset_id", sa.Integer, sa.ForeignKey("datasets.id"), nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.UniqueConstraint("dataset_id", "item_index", name="uq_dataset_item"),
    )
    op.create_index("ix_dataset_items_dataset_id", "dataset_items", ["dataset_id"])
    op.create_index("ix_dataset_items_request_id", "dataset_items", ["request_id"])


def downgrade() -> None:
    op.drop_table("dataset_items")
    op.drop_table("datasets")
