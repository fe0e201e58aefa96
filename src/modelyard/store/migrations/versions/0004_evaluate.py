"""evaluate: eval runs and their items

Revision ID: 0004_evaluate
Revises: 0003_observe
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0004_evaluate"
down_revision = "0003_observe"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "eval_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("dataset_sha256", sa.String(64), nullable=False),
        sa.Column("model", sa.String(160), nullable=False),
        sa.Column("versions", sa.JSON, nullable=False),
        sa.Column("item_count", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("metrics", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
    )
    op.create_index("ix_eval_runs_task", "eval_runs", ["task"])
    op.create_index("ix_eval_runs_dataset_sha256", "eval_runs", ["dataset_sha256"])
    op.create_index("ix_eval_runs_created_at", "eval_runs", ["created_at"])
    op.create_table(
        "eval_items",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("eval_runs.id"), nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("request_id", sa.String(64), nullable=True),
        sa.Column("version", sa.String(160), nullable=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("prediction", sa.Text, nullable=False),
        sa.Column("extracted", sa.Text, nullable=False),
        sa.Column("reference", sa.JSON, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.UniqueConstraint("run_id", "item_index", name="uq_eval_item"),
    )
    op.create_index("ix_eval_items_run_id", "eval_items", ["run_id"])
    op.create_table(
        "eval_judgements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("eval_runs.id"), nullable=False),
        sa.Column("item_index", sa.Integer, nullable=False),
        sa.Column("judge", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("model", sa.String(160), nullable=False),
        sa.Column("prompts", sa.JSON, nullable=False),
        sa.Column("outputs", sa.JSON, nullable=False),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
    )
    op.create_index("ix_eval_judgements_run_id", "eval_judgements", ["run_id"])


def downgrade() -> None:
    op.drop_table("eval_judgements")
    op.drop_table("eval_items")
    op.drop_table("eval_runs")
