"""Shared fixtures: a storage per test on SQLite, and on PostgreSQL when one is configured.

Set ``BRANDMON_TEST_PG_URL`` (e.g. ``postgresql+psycopg://postgres@127.0.0.1:5432/test``) to run
the storage tests on PostgreSQL too; they use a throw-away database created for the session.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.storage import Storage

PG_URL = os.environ.get("BRANDMON_TEST_PG_URL")


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for this test session, dropped at the end."""
    if not PG_URL:
        pytest.skip("BRANDMON_TEST_PG_URL is not set")
    server = make_url(PG_URL).set(drivername="postgresql+psycopg")
    name = f"brandmon_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database URL with an empty brandmon schema, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'brandmon.db'}"
        return
    url = request.getfixturevalue("pg_url")
    empty = Storage(url)
    empty.drop_schema()
    empty.close()
    yield url


@pytest.fixture
def storage(db_url: str) -> Iterator[Storage]:
    store = Storage(db_url, batch_size=3)
    store.create_schema()
    yield store
    store.close()
