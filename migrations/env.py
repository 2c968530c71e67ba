"""Alembic environment: the configured database and every model's metadata."""

from logging.config import fileConfig

from alembic import context

from core.db import make_engine
from core.models import Base
from core.settings import get_settings

if context.config.config_file_name is not None:
    fileConfig(context.config.config_file_name, disable_existing_loggers=False)


def run_migrations_offline() -> None:
    """Emit SQL for the configured URL without connecting."""
    context.configure(
        url=get_settings().DATABASE_URL,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=True,
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Apply migrations over a live connection."""
    engine = make_engine(get_settings().DATABASE_URL)
    with engine.connect() as connection:
        # Batch mode lets SQLite alter tables by copying them, as it must.
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
