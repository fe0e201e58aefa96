"""release: traffic policies, rollouts, experiments, their measurements and events

Revision ID: 0006_release
Revises: 0005_datasets
Create Date: 2026-11-24
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0006_release"
down_revision = "0005_datasets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("request_log", sa.Column("fallback_from", sa.String(160), nullable=True))
    op.create_table(
        "traffic_policies",
        sa.Column("model", sa.String(128), primary_key=True),
        sa.Column("policy", sa.JSON, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("updated_by", sa.String(256), nullable=False),
    )
    op.create_table(
        "traffic_policy_changes",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("before", sa.JSON, nullable=True),
        sa.Column("after", sa.JSON, nullable=True),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_traffic_policy_changes_model", "traffic_policy_changes", ["model"])
    op.create_table(
        "rollouts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("baseline", sa.Integer, nullable=False),
        sa.Column("candidate", sa.Integer, nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("step_started_at", UTCDateTime, nullable=False),
        sa.Column("weight", sa.Float, nullable=False),
        sa.Column("weight_since", UTCDateTime, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.create_index("ix_rollouts_model", "rollouts", ["model"])
    op.create_index("ix_rollouts_status", "rollouts", ["status"])
    op.create_table(
        "experiments",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("model", sa.String(128), nullable=False),
        sa.Column("spec", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("result", sa.JSON, nullable=False),
        sa.Column("started_at", UTCDateTime, nullable=False),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("revision", sa.Integer, nullable=False),
    )
    op.create_index("ix_experiments_model", "experiments", ["model"])
    op.create_index("ix_experiments_status", "experiments", ["status"])
    op.create_table(
        "release_measurements",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.Integer, nullable=False),
        sa.Column("step", sa.Integer, nullable=False),
        sa.Column("seq", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
        sa.UniqueConstraint("subject", "subject_id", "step", "seq", name="uq_release_measurement"),
    )
    op.create_index("ix_release_measurements_subject_id", "release_measurements", ["subject_id"])
    op.create_table(
        "release_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.Integer, nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("data", sa.JSON, nullable=False),
    )
    op.create_index("ix_release_events_subject_id", "release_events", ["subject_id"])
    op.create_table(
        "leases",
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("holder", sa.String(128), nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
    )


def downgrade() -> None:
    for table in (
        "leases",
        "release_events",
        "release_measurements",
        "experiments",
        "rollouts",
        "traffic_policy_changes",
        "traffic_policies",
    ):
        op.drop_table(table)
    op.drop_column("request_log", "fallback_from")
