"""Alembic environment: runs online on the connection handed over in the config, inside its
caller's transaction (a restore's), else in a transaction of its own on the engine handed
over."""

from alembic import context
from sqlalchemy import Connection

from modelyard.store.tables import Base


def run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",
    )
    context.run_migrations()


given = context.config.attributes.get("connection")
if given is not None:
    run(given)
else:
    with context.config.attributes["engine"].begin() as connection:
        run(connection)
