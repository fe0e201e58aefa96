"""review: review queues over dataset versions, their items and decisions

Revision ID: 0011_review
Revises: 0010_distil
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0011_review"
down_revision = "0010_distil"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "reviews",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("finished_by", sa.String(256), nullable=True),
        sa.Column("result_dataset", sa.String(128), nullable=True),
        sa.Column("result_version", sa.Integer, nullable=True),
        sa.Column("result", sa.JSON, nullable=True),
    )
    op.create_index("ix_reviews_dataset", "reviews", ["dataset"])
    op.create_index("ix_reviews_status", "reviews", ["status"])
    op.create_index("ix_reviews_created_at", "reviews", ["created_at"])
    op.create_table(
        "review_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.id"), nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("decision", sa.String(16), nullable=True),
        sa.Column("correction", sa.Text, nullable=True),
        sa.Column("decided_by", sa.String(256), nullable=True),
        sa.Column("decided_at", UTCDateTime(), nullable=True),
        sa.Column("leased_by", sa.String(256), nullable=True),
        sa.Column("lease_expires_at", UTCDateTime(), nullable=True),
        sa.UniqueConstraint("review_id", "item_index", name="uq_review_item"),
    )
    op.create_index("ix_review_items_review_id", "review_items", ["review_id"])
    op.create_table(
        "review_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("review_id", sa.Integer, sa.ForeignKey("reviews.id"), nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("reviewer", sa.String(256), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("correction", sa.Text, nullable=True),
        sa.Column("before", sa.JSON, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("undone_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_review_events_review_id", "review_events", ["review_id"])
    op.create_index("ix_review_events_reviewer", "review_events", ["reviewer"])


def downgrade() -> None:
    op.drop_table("review_events")
    op.drop_table("review_items")
    op.drop_table("reviews")
