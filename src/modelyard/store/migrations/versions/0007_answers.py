"""answers: the request log's finish reason, format asked, tool calls and format failures

Revision ID: 0007_answers
Revises: 0006_release
Create Date: 2026-12-03
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_answers"
down_revision = "0006_release"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_log") as table:
        table.add_column(sa.Column("finish_reason", sa.String(32), nullable=True))
        table.add_column(sa.Column("response_format", sa.String(16), nullable=True))
        table.add_column(sa.Column("schema_name", sa.String(64), nullable=True))
        table.add_column(sa.Column("tool_calls", sa.Integer, nullable=False, server_default="0"))
        table.add_column(sa.Column("tool_names", sa.JSON, nullable=False, server_default="[]"))
        table.add_column(sa.Column("format_error", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("request_log") as table:
        for name in (
            "format_error",
            "tool_names",
            "tool_calls",
            "schema_name",
            "response_format",
            "finish_reason",
        ):
            table.drop_column(name)
