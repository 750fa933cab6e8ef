"""Alembic environment for snapshot-bot.

Normally run through `storage.db.Database.upgrade()`, which passes its own connection (already inside a
transaction) in `config.attributes["connection"]`; `alembic -c storage/alembic.ini upgrade head` also works
and connects to `sqlalchemy.url`, or to DATABASE_URL when that is set.
"""

from __future__ import annotations

import os
from logging.config import fileConfig

from alembic import context
from sqlalchemy import Connection

from storage.db import Database
from storage.models import Base

# Any constant works; it only has to be the same for every replica running migrations.
_MIGRATION_LOCK_KEY = 0x5A4E_B07

config = context.config
target_metadata = Base.metadata

# Only when run by the alembic command line: inside the bot, the application owns logging.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _run(connection: Connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, compare_type=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            # Serialise concurrent upgrades from several replicas; released when the transaction ends.
            connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATION_LOCK_KEY})")
        context.run_migrations()


def run_migrations_offline() -> None:
    context.configure(url=config.get_main_option("sqlalchemy.url"), target_metadata=target_metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = os.environ.get("DATABASE_URL") or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set DATABASE_URL (or sqlalchemy.url in alembic.ini) to the database to migrate")
    database = Database(url)
    try:
        with database.begin() as conn:
            _run(conn)
    finally:
        database.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
