"""console language: the language each console user (an API key) chose, remembered

Revision ID: 0015_console_language
Revises: 0014_live_quality
Create Date: 2026-12-06
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0015_console_language"
down_revision = "0014_live_quality"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_preferences",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("language", sa.String(16), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_preferences")
