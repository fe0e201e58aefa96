"""guard: API keys, route policies, audit events, request log

Revision ID: 0002_guard
Revises: 0001_registry
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0002_guard"
down_revision = "0001_registry"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "api_keys",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("secret_sha256", sa.String(64), nullable=False),
        sa.Column("previous_sha256", sa.String(64), nullable=True),
        sa.Column("previous_valid_until", UTCDateTime, nullable=True),
        sa.Column("allowed_routes", sa.JSON, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=True),
        sa.Column("limits", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.Column("updated_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_api_keys_updated_at", "api_keys", ["updated_at"])
    op.create_table(
        "route_policies",
        sa.Column("route", sa.String(128), primary_key=True),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
    )
    op.create_index("ix_route_policies_updated_at", "route_policies", ["updated_at"])
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(256), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_index("ix_audit_events_action", "audit_events", ["action"])
    op.create_table(
        "request_log",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("endpoint", sa.String(64), nullable=False),
        sa.Column("route", sa.String(128), nullable=False),
        sa.Column("version", sa.String(160), nullable=True),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("error_code", sa.String(64), nullable=True),
        sa.Column("latency_ms", sa.Float, nullable=False),
        sa.Column("ttft_ms", sa.Float, nullable=True),
        sa.Column("prompt_tokens", sa.Integer, nullable=False),
        sa.Column("completion_tokens", sa.Integer, nullable=False),
        sa.Column("cost", sa.Float, nullable=False),
        sa.Column("streamed", sa.Boolean, nullable=False),
        sa.Column("pii", sa.JSON, nullable=False),
        sa.Column("injection", sa.JSON, nullable=False),
        sa.Column("content", sa.LargeBinary, nullable=True),
    )
    op.create_index("ix_request_log_at", "request_log", ["at"])
    op.create_index("ix_request_log_day", "request_log", ["day"])
    op.create_index("ix_request_log_key_id", "request_log", ["key_id"])
    op.create_index("ix_request_log_route", "request_log", ["route"])


def downgrade() -> None:
    op.drop_table("request_log")
    op.drop_table("audit_events")
    op.drop_table("route_policies")
    op.drop_table("api_keys")
