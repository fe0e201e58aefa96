"""Alembic environment: runs online against the engine handed over in the config."""

from alembic import context

from modelyard.store.tables import Base

engine = context.config.attributes["engine"]

with engine.begin() as connection:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=engine.dialect.name == "sqlite",
    )
    context.run_migrations()
