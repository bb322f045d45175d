"""Work locks: on PostgreSQL an advisory lock has one holder, and is free again the moment its
holder's connection ends (``kill -9``, a terminated backend); on SQLite they are leases."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import text

from monitor.locks import AdvisoryLocks, LeaseLocks, work_locks
from monitor.storage import Storage

HOLDER = """
import sys, time
from sqlalchemy import create_engine
from monitor.locks import AdvisoryLocks
locks = AdvisoryLocks(create_engine(sys.argv[1]), 'holder')
assert locks.take(sys.argv[2])
print("held", flush=True)
time.sleep(600)
"""


def wait_for(take: object, name: str, seconds: float) -> float:
    """Try ``take(name)`` until it succeeds; how long that took (``inf`` past ``seconds``)."""
    began = time.monotonic()
    while time.monotonic() - began < seconds:
        if take(name):  # type: ignore[operator]
            return time.monotonic() - began
        time.sleep(0.05)
    return float("inf")


def test_an_advisory_lock_has_one_holder_until_freed(pg_url: str) -> None:
    storage = Storage(pg_url)
    a, b = work_locks(storage, "a"), work_locks(storage, "b")
    assert isinstance(a, AdvisoryLocks) and isinstance(b, AdvisoryLocks)
    try:
        assert a.take("brand:Acme")
        assert not a.take("brand:Acme")  # not twice, by this instance either
        assert not b.take("brand:Acme")
        assert b.take("brand:Other")  # another piece of work
        b.free("brand:Acme")  # not b's to free
        assert not b.take("brand:Acme")
        a.free("brand:Acme")
        assert b.take("brand:Acme")
        assert b.held == {"brand:Acme", "brand:Other"}
        b.close()  # its backend ends a moment later, and its locks with it
        assert wait_for(a.take, "brand:Acme", 30) < 30
        assert a.take("brand:Other")
    finally:
        a.close()
        b.close()
        storage.close()


def test_a_killed_holders_lock_is_free_at_once(pg_url: str) -> None:
    storage = Storage(pg_url)
    mine = AdvisoryLocks(storage.engine, "mine")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, pg_url, "sink:slack"],
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        assert not mine.take("sink:slack")
        holder.kill()  # SIGKILL: it frees nothing itself
        holder.wait(timeout=10)
        assert wait_for(mine.take, "sink:slack", 30) < 30
    finally:
        holder.kill()
        holder.wait(timeout=10)
        mine.close()
        storage.close()


def test_a_lost_lock_connection_loses_its_locks_and_reconnects(pg_url: str) -> None:
    storage = Storage(pg_url)
    a, b = AdvisoryLocks(storage.engine, "a"), AdvisoryLocks(storage.engine, "b")
    try:
        assert a.take("source:news")
        with storage.engine.connect() as connection:  # as a restarted server would
            connection.execute(
                text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE application_name = 'brandmon a'"
                    " AND datname = current_database()"
                )
            )
        assert wait_for(b.take, "source:news", 30) < 30  # b reconnects, the lock is free
        assert not a.take("source:other")  # a learns its connection is gone...
        assert a.held == frozenset()  # ...with its locks
        assert not a.take("source:news")  # then reconnects: b holds it now
        assert a.take("source:other")
    finally:
        a.close()
        b.close()
        storage.close()


def test_sqlite_locks_are_leases(tmp_path: Path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'brandmon.db'}")
    storage.create_schema()
    a, b = work_locks(storage, "a"), work_locks(storage, "b")
    assert isinstance(a, LeaseLocks)
    assert a.take("brand:Acme") and not b.take("brand:Acme")
    a.free("brand:Acme")
    assert b.take("brand:Acme")
    storage.close()
