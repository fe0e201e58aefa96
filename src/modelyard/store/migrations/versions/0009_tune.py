"""tune: tuning studies and their trials

Revision ID: 0009_tune
Revises: 0008_curation
Create Date: 2026-12-04
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0009_tune"
down_revision = "0008_curation"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tune_studies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("task", sa.String(64), nullable=False),
        sa.Column("model", sa.String(160), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("objective", sa.String(128), nullable=False),
        sa.Column("direction", sa.String(8), nullable=False),
        sa.Column("search_items", sa.JSON, nullable=False),
        sa.Column("holdout_items", sa.JSON, nullable=False),
        sa.Column("partition", sa.JSON, nullable=False),
        sa.Column("importances", sa.JSON, nullable=True),
        sa.Column("confirmation", sa.JSON, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
    )
    op.create_index("ix_tune_studies_task", "tune_studies", ["task"])
    op.create_index("ix_tune_studies_created_at", "tune_studies", ["created_at"])
    op.create_table(
        "tune_trials",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("study_id", sa.Integer, sa.ForeignKey("tune_studies.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("is_default", sa.Boolean, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("settings", sa.JSON, nullable=False),
        sa.Column("run_id", sa.Integer, sa.ForeignKey("eval_runs.id"), nullable=True),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=True),
        sa.Column("cost", sa.Float, nullable=True),
        sa.Column("constraints", sa.JSON, nullable=False),
        sa.Column("feasible", sa.Boolean, nullable=True),
        sa.Column("errors", sa.Integer, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("study_id", "number", name="uq_tune_trial"),
    )
    op.create_index("ix_tune_trials_study_id", "tune_trials", ["study_id"])


def downgrade() -> None:
    op.drop_index("ix_tune_trials_study_id", "tune_trials")
    op.drop_table("tune_trials")
    op.drop_index("ix_tune_studies_created_at", "tune_studies")
    op.drop_index("ix_tune_studies_task", "tune_studies")
    op.drop_table("tune_studies")
