"""The schema is versioned (Alembic): an empty database, one made by a release from before
migrations, and several instances starting at once all end at this release's schema, with
nothing stored lost; migrations run back down as well as up."""

from __future__ import annotations

import subprocess
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlmodel import SQLModel
from typer.testing import CliRunner

from monitor import migrations
from monitor.cli import app
from monitor.model import MentionRow
from monitor.storage import Storage

BEFORE_MIGRATIONS = "0001"
"""The schema the releases before migrations made (their ``create_all``)."""


def row(external_id: str) -> MentionRow:
    now = datetime(2026, 11, 20, 8, tzinfo=UTC)
    return {
        "source": "x",
        "source_type": "x",
        "external_id": external_id,
        "url": None,
        "canonical_url": None,
        "author": "a",
        "author_followers": 10,
        "likes": 0,
        "reposts": 0,
        "replies": 0,
        "views": None,
        "text": "acme lost my parcel",
        "language": "en",
        "published_at": now,
        "fetched_at": now,
        "sentiment_compound": -0.6,
        "sentiment_label": "negative",
        "reach_score": 1.0,
        "category": "complaint",
        "priority": "P2",
        "brand": "Acme",
    }


def differences(engine: sa.Engine) -> list[object]:
    """How the database's schema differs from the models' (nothing, when migrations are right)."""
    with engine.connect() as connection:
        return compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)


def version(engine: sa.Engine) -> str | None:
    with engine.connect() as connection:
        return migrations.current(connection)


def test_an_empty_database_gets_this_releases_schema(db_url: str) -> None:
    storage = Storage(db_url)
    storage.create_schema()
    assert version(storage.engine) == migrations.head()
    assert differences(storage.engine) == []
    storage.close()


def test_a_database_of_the_release_before_migrations_is_upgraded_keeping_its_mentions(
    db_url: str,
) -> None:
    old = Storage(db_url)
    with old.engine.begin() as connection:  # as the old release made it: no version table
        migrations.upgrade(connection, BEFORE_MIGRATIONS)
        connection.exec_driver_sql("DROP TABLE alembic_version")
        mention = sa.table("mention", *(sa.column(name) for name in row("1")))
        connection.execute(mention.insert(), [row("1"), row("2")])
    old.close()

    storage = Storage(db_url)
    storage.create_schema()
    assert version(storage.engine) == migrations.head()
    assert differences(storage.engine) == []
    assert sorted(m.external_id for m in storage.mentions()) == ["1", "2"]
    [mention_id, _] = [m.id for m in storage.mentions()]
    storage.set_mention_state(mention_id, assigned_to="aisha")  # the new table works
    storage.close()


def test_a_database_at_this_releases_schema_is_opened_without_loading_alembic(
    tmp_path: Path,
) -> None:
    """Every command brings the database to this release's schema first; when it is there
    already, Alembic (which takes longer to import than most commands take) is not loaded."""
    assert migrations.head() == migrations.HEAD  # HEAD names the newest migration
    url = f"sqlite:///{tmp_path / 'm.db'}"
    Storage(url).create_schema()
    opened = subprocess.run(
        [sys.executable, "-c", OPEN.format(url=url)], capture_output=True, text=True, check=True
    )
    assert opened.stdout.split() == [migrations.HEAD, "False"]


OPEN = """
import sys
from monitor.storage import Storage
storage = Storage("{url}")
storage.create_schema()
with storage.engine.connect() as connection:
    print(connection.exec_driver_sql("SELECT version_num FROM alembic_version").scalar())
print("alembic" in sys.modules)
"""


def test_migrations_run_down_to_nothing_and_up_again(db_url: str) -> None:
    storage = Storage(db_url)
    storage.create_schema()
    with storage.engine.begin() as connection:
        migrations.downgrade(connection, "base")
    assert set(sa.inspect(storage.engine).get_table_names()) <= {"alembic_version"}
    storage.create_schema()
    assert differences(storage.engine) == []
    storage.add_mentions([row("1")])
    storage.close()


def test_instances_starting_at_once_on_an_empty_postgresql_all_come_up(pg_url: str) -> None:
    empty = Storage(pg_url)
    empty.drop_schema()
    empty.close()
    storages = [Storage(pg_url) for _ in range(3)]
    start, failures = threading.Barrier(len(storages)), []

    def come_up(storage: Storage) -> None:
        start.wait()
        try:
            storage.create_schema()
        except Exception as exc:  # noqa: BLE001 - any failure to start is what is tested
            failures.append(exc)

    threads = [threading.Thread(target=come_up, args=(s,)) for s in storages]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert failures == []
    assert version(storages[0].engine) == migrations.head()
    for storage in storages:
        storage.close()


def test_db_upgrade_says_what_it_did(tmp_path: Path) -> None:
    config = tmp_path / "brandmon.toml"
    config.write_text(
        f'[storage]\nurl = "sqlite:///{tmp_path}/b.db"\n[[brands]]\nname = "A"\nkeywords = ["a"]\n'
    )
    runner = CliRunner()
    before = runner.invoke(app, ["db", "current", "--config", str(config)])
    assert "database: none" in before.stdout
    first = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert first.exit_code == 0
    assert f"upgraded from none to {migrations.head()}" in first.stdout
    again = runner.invoke(app, ["db", "upgrade", "--config", str(config)])
    assert f"already at {migrations.head()}" in again.stdout
