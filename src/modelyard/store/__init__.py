"""The store: SQLAlchemy tables, Alembic migrations and sessions (SQLite or PostgreSQL)."""

from modelyard.store.database import Store, open_store

__all__ = ["Store", "open_store"]
