"""Alembic environment: the target metadata is api.models; SQLite uses batch mode."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine, pool, text

from api.models import Base

config = context.config
target_metadata = Base.metadata
MIGRATION_LOCK = 7_146_591_220  # any constant: the advisory lock key of Linli's migrations


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"),
                      target_metadata=target_metadata, literal_binds=True,
                      render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = config.get_main_option("sqlalchemy.url")
    assert url is not None
    engine = create_engine(url, poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          render_as_batch=connection.dialect.name == "sqlite")
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Several processes start at once (servers, workers): one migrates, the others
                # wait here, then find the schema current. Released at commit.
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"),
                                   {"key": MIGRATION_LOCK})
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
