"""registry: models, versions, aliases, alias moves

Revision ID: 0001_registry
Revises:
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from modelyard.store.tables import UTCDateTime

revision = "0001_registry"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "models",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("task", sa.String(32), nullable=False),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "model_versions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("engine_kind", sa.String(64), nullable=False),
        sa.Column("artifact_uri", sa.Text, nullable=False),
        sa.Column("artifact_sha256", sa.String(64), nullable=True),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("created_by", sa.String(256), nullable=False),
        sa.Column("notes", sa.Text, nullable=False),
        sa.UniqueConstraint("model_id", "number", name="uq_version_number"),
    )
    op.create_index("ix_model_versions_model_id", "model_versions", ["model_id"])
    op.create_table(
        "aliases",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("model_id", "name", name="uq_alias_name"),
    )
    op.create_index("ix_aliases_model_id", "aliases", ["model_id"])
    op.create_table(
        "alias_moves",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False),
        sa.Column("alias", sa.String(64), nullable=False),
        sa.Column("from_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=True),
        sa.Column("to_version_id", sa.Integer, sa.ForeignKey("model_versions.id"), nullable=False),
        sa.Column("actor", sa.String(256), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("moved_at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_alias_moves_model_id", "alias_moves", ["model_id"])
    op.create_index("ix_alias_moves_moved_at", "alias_moves", ["moved_at"])


def downgrade() -> None:
    op.drop_table("alias_moves")
    op.drop_table("aliases")
    op.drop_table("model_versions")
    op.drop_table("models")
