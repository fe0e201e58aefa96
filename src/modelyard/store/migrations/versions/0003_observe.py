"""observe: request-log columns, feedback, drift reports, alert rules and events

Revision ID: 0003_observe
Revises: 0002_guard
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0003_observe"
down_revision = "0002_guard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("request_log") as table:
        table.add_column(sa.Column("user", sa.String(256), nullable=True))
        table.add_column(sa.Column("variant", sa.String(64), nullable=True))
        table.add_column(sa.Column("overhead_ms", sa.Float, nullable=True))
        table.add_column(sa.Column("energy_wh", sa.Float, nullable=False, server_default="0"))
        table.add_column(sa.Column("carbon_g", sa.Float, nullable=False, server_default="0"))
        table.add_column(
            sa.Column("cache_hit", sa.Boolean, nullable=False, server_default=sa.false())
        )
        table.add_column(sa.Column("language", sa.String(16), nullable=True))
        table.add_column(sa.Column("prompt_chars", sa.Integer, nullable=False, server_default="0"))
    op.create_index("ix_request_log_status", "request_log", ["status"])
    op.create_table(
        "feedback",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("request_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("number", sa.Float, nullable=True),
        sa.Column("category", sa.String(128), nullable=True),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_feedback_request_id", "feedback", ["request_id"])
    op.create_index("ix_feedback_name", "feedback", ["name"])
    op.create_index("ix_feedback_at", "feedback", ["at"])
    op.create_table(
        "drift_reports",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("reference_from", UTCDateTime, nullable=False),
        sa.Column("reference_to", UTCDateTime, nullable=False),
        sa.Column("current_from", UTCDateTime, nullable=False),
        sa.Column("current_to", UTCDateTime, nullable=False),
        sa.Column("drifted", sa.Boolean, nullable=False),
        sa.Column("share_drifted", sa.Float, nullable=False),
        sa.Column("report", sa.JSON, nullable=False),
    )
    op.create_index("ix_drift_reports_at", "drift_reports", ["at"])
    op.create_index("ix_drift_reports_route", "drift_reports", ["route"])
    op.create_table(
        "alert_rules",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("rule", sa.JSON, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
    )
    op.create_index("ix_alert_rules_updated_at", "alert_rules", ["updated_at"])
    op.create_table(
        "alert_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("rule_id", sa.Integer, sa.ForeignKey("alert_rules.id"), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("value", sa.Float, nullable=True),
        sa.Column("details", sa.JSON, nullable=False),
        sa.Column("deliveries", sa.JSON, nullable=False),
    )
    op.create_index("ix_alert_events_rule_id", "alert_events", ["rule_id"])
    op.create_index("ix_alert_events_at", "alert_events", ["at"])


def downgrade() -> None:
    op.drop_table("alert_events")
    op.drop_table("alert_rules")
    op.drop_table("drift_reports")
    op.drop_table("feedback")
    op.drop_index("ix_request_log_status", "request_log")
    with op.batch_alter_table("request_log") as table:
        for column in (
            "prompt_chars",
            "language",
            "cache_hit",
            "carbon_g",
            "energy_wh",
            "overhead_ms",
            "variant",
            "user",
        ):
            table.drop_column(column)
