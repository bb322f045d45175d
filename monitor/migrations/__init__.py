"""The database schema's history, as Alembic migrations (``versions/``), and bringing a database
to this release's schema.

``upgrade`` runs at every start (``Storage.create_schema``, under an advisory lock on
PostgreSQL, so instances starting together on an empty database take turns) and from
``brandmon db upgrade``.  The first migration, the baseline, creates only what is missing of the
schema the releases before migrations made, so a database of theirs (tables but no
``alembic_version``) is upgraded like an empty one, keeping what it holds.

A change to a table in ``monitor/model.py`` comes with a new file in ``versions/``:
``alembic -c monitor/migrations/alembic.ini revision --autogenerate -m "what"`` against a
database at the previous head writes most of it (see CONTRIBUTING.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import inspect
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

import monitor.model  # noqa: F401  (the tables drop_all removes)

# Alembic (and Mako, which it loads) takes longer to import than the rest of a command's work:
# it is imported only when a migration runs, not at every start of a database already at HEAD.
if TYPE_CHECKING:
    from alembic.config import Config

HERE = Path(__file__).parent
HEAD = "0005"
"""This release's revision, the newest in ``versions/``: ``head()`` as Alembic reads it from
them (a test holds the two together), known here without loading Alembic."""


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for brandmon's migrations, working in ``connection``."""
    from alembic.config import Config

    settings = Config()
    settings.set_main_option("script_location", str(HERE))
    settings.attributes["connection"] = connection
    return settings


def head() -> str:
    """The revision this release's schema is at."""
    from alembic.script import ScriptDirectory

    revision = ScriptDirectory.from_config(config()).get_current_head()
    assert revision is not None
    return revision


def current(connection: Connection) -> str | None:
    """The revision the database is at; ``None`` when it is empty or was made by a release
    from before migrations."""
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()


def upgrade(connection: Connection, revision: str = "head") -> None:
    """Migrate the database to ``revision`` (this release's schema by default), in
    ``connection``'s transaction (the caller commits)."""
    if revision == "head" and _at_head(connection):
        return
    from alembic import command

    command.upgrade(config(connection), revision)


def _at_head(connection: Connection) -> bool:
    """Whether the database is at ``HEAD``, read without Alembic."""
    if not inspect(connection).has_table("alembic_version"):
        return False
    versions = connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalars()
    return versions.all() == [HEAD]


def drop_all(connection: Connection) -> None:
    """Remove every brandmon table and the schema's version, leaving an empty database (what
    the tests and benches start from); dropping the tables alone would leave a version that
    says they are there."""
    SQLModel.metadata.drop_all(connection)
    connection.exec_driver_sql("DROP TABLE IF EXISTS alembic_version")


def downgrade(connection: Connection, revision: str) -> None:
    """Migrate the database back to ``revision`` (``base``: no brandmon table left)."""
    from alembic import command

    command.downgrade(config(connection), revision)
