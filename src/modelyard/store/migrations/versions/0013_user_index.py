"""user index: a user's data on request finds the user's requests without a full scan

Revision ID: 0013_user_index
Revises: 0012_compress
Create Date: 2026-12-06
"""

from alembic import op

revision = "0013_user_index"
down_revision = "0012_compress"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_request_log_user", "request_log", ["user"])


def downgrade() -> None:
    op.drop_index("ix_request_log_user", table_name="request_log")
