"""compress: quantised variants of a version, measured beside their parent

Revision ID: 0012_compress
Revises: 0011_review
Create Date: 2026-12-05
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0012_compress"
down_revision = "0011_review"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "compressions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("engine_kind", sa.String(64), nullable=False),
        sa.Column("request", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("stage", sa.String(32), nullable=False),
        sa.Column("variants", sa.JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_compressions_model", "compressions", ["model"])
    op.create_index("ix_compressions_created_at", "compressions", ["created_at"])


def downgrade() -> None:
    op.drop_table("compressions")
