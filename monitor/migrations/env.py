"""Alembic's entry point: migrations run in the connection brandmon hands over, or, from the
``alembic`` command line, in one opened on ``sqlalchemy.url``."""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine
from sqlmodel import SQLModel

import monitor.model  # noqa: F401  (the tables, for --autogenerate)

connection = context.config.attributes.get("connection")
if connection is None:
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "")
    with engine.begin() as connection:
        context.configure(
            connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True
        )
        context.run_migrations()
else:
    # render_as_batch: SQLite changes a table by copying it, which Alembic's batch mode does.
    context.configure(
        connection=connection, target_metadata=SQLModel.metadata, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()
