"""live quality: judge scores of a sample of live answers, per request and version

Revision ID: 0014_live_quality
Revises: 0013_user_index
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0014_live_quality"
down_revision = "0013_user_index"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "live_judgements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("judge_request_id", sa.String(80), nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("version", sa.String(160), nullable=False),
        sa.Column("variant", sa.String(64), nullable=True),
        sa.Column("judge", sa.String(160), nullable=True),
        sa.Column("score", sa.Float, nullable=True),
        sa.Column("quality", sa.Float, nullable=True),
        sa.Column("scale_low", sa.Integer, nullable=False),
        sa.Column("scale_high", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_live_judgements_request_id", "live_judgements", ["request_id"])
    op.create_index("ix_live_judgements_route_at", "live_judgements", ["route", "at"])
    op.create_index("ix_live_judgements_at", "live_judgements", ["at"])


def downgrade() -> None:
    op.drop_table("live_judgements")
