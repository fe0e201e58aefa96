"""distil: teacher labelling runs and their items, distillations into students

Revision ID: 0010_distil
Revises: 0009_tune
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0010_distil"
down_revision = "0009_tune"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "label_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=False),
        sa.Column("teacher", sa.String(160), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("counts", sa.JSON, nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("result_dataset", sa.String(128), nullable=True),
        sa.Column("result_version", sa.Integer, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_label_runs_dataset", "label_runs", ["dataset"])
    op.create_index("ix_label_runs_key", "label_runs", ["key"])
    op.create_index("ix_label_runs_created_at", "label_runs", ["created_at"])
    op.create_table(
        "label_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("label_runs.id"), nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("version", sa.String(160), nullable=True),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("label", sa.Text, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.UniqueConstraint("run_id", "item_index", name="uq_label_item"),
    )
    op.create_index("ix_label_items_run_id", "label_items", ["run_id"])
    op.create_table(
        "distillations",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=True),
        sa.Column("dataset", sa.String(128), nullable=False),
        sa.Column("dataset_version", sa.Integer, nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("lineage", sa.JSON, nullable=False),
        sa.Column("artifact_uri", sa.Text, nullable=True),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_distillations_model", "distillations", ["model"])
    op.create_index("ix_distillations_created_at", "distillations", ["created_at"])


def downgrade() -> None:
    op.drop_table("distillations")
    op.drop_table("label_items")
    op.drop_table("label_runs")
