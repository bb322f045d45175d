"""Which instance does one piece of shared work: poll a source, judge a brand, deliver to a sink.

On PostgreSQL each piece is a session-level advisory lock, all of an instance's held on one
connection of its own.  PostgreSQL frees them the moment that connection ends, so the work of an
instance killed with ``kill -9`` is free for the others at once (its kernel closes the socket);
the server's TCP keep-alives, set short on this connection, end it within about 25 s when its
host vanishes instead.  Nothing expires and no machine's clock is read.

On SQLite (one instance's own file) a piece of work is a row of the ``lease`` table with an expiry
(``Storage.acquire``): it keeps a ``brandmon run --once`` from judging or delivering alongside a
running daemon.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from datetime import timedelta
from typing import Protocol

import psycopg
from sqlalchemy import Engine

from monitor.storage import Storage

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=5)
"""How long a SQLite lease lasts: longer than any pass (the HTTP deadline is 2 minutes)."""

KEEPALIVE = "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 -c tcp_keepalives_count=3"
"""The server gives up on the lock connection of a silent host after 10 + 3 x 5 s."""


class WorkLocks(Protocol):
    def take(self, name: str) -> bool:
        """Take the lock ``name`` unless anyone (this instance included) holds it."""
        ...

    def free(self, name: str) -> None:
        """Free the lock ``name``, if this instance holds it."""
        ...

    def close(self) -> None:
        """Free every lock this instance holds."""
        ...


def work_locks(storage: Storage, owner: str) -> WorkLocks:
    """Advisory locks on PostgreSQL, ``owner``'s leases on SQLite."""
    if storage.engine.dialect.name == "postgresql":
        return AdvisoryLocks(storage.engine, owner)
    return LeaseLocks(storage, owner)


class LeaseLocks:
    """Locks that are leases in the ``lease`` table, owned by ``owner``."""

    def __init__(self, storage: Storage, owner: str) -> None:
        self.storage = storage
        self.owner = owner

    def take(self, name: str) -> bool:
        return self.storage.acquire(name, self.owner, LEASE)

    def free(self, name: str) -> None:
        self.storage.release(name, self.owner)

    def close(self) -> None:
        """Leases are freed one by one (``free``); those of a dead process expire."""


class AdvisoryLocks:
    """PostgreSQL session-level advisory locks on one connection, opened at the first ``take``
    and again after it was lost.  Safe to use from several threads.

    The connection's ``application_name`` is ``brandmon <owner>``: ``pg_locks`` joined with
    ``pg_stat_activity`` tells which instance (host, pid) holds which lock."""

    def __init__(self, engine: Engine, owner: str) -> None:
        self._name = f"brandmon {owner}"[:63]  # PostgreSQL keeps 63 bytes of it
        self._conninfo = engine.url.set(drivername="postgresql").render_as_string(
            hide_password=False
        )
        self._connection: psycopg.Connection | None = None
        self._held: set[str] = set()
        self._guard = threading.Lock()

    def take(self, name: str) -> bool:
        with self._guard:
            if name in self._held:
                return False
            taken = self._run("SELECT pg_try_advisory_lock(%s)", name)
            if taken:
                self._held.add(name)
            return taken

    def free(self, name: str) -> None:
        with self._guard:
            if name in self._held:
                self._held.discard(name)
                self._run("SELECT pg_advisory_unlock(%s)", name)

    def close(self) -> None:
        with self._guard:
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            self._held.clear()

    @property
    def held(self) -> frozenset[str]:
        with self._guard:
            return frozenset(self._held)

    def _run(self, sql: str, name: str) -> bool:
        """Run ``sql`` on the lock ``name``'s key; a lost connection answers ``False`` and
        loses every lock (PostgreSQL freed them when it ended)."""
        try:
            if self._connection is None or self._connection.closed:
                self._connection = psycopg.connect(
                    self._conninfo,
                    autocommit=True,
                    application_name=self._name,
                    options=KEEPALIVE,
                    connect_timeout=10,
                )
            row = self._connection.execute(sql, (lock_key(name),)).fetchone()
        except psycopg.OperationalError as exc:
            if self._held:
                log.warning("lock connection lost, %d lock(s) with it: %s", len(self._held), exc)
            self._held.clear()
            if self._connection is not None:
                self._connection.close()
            self._connection = None
            return False
        return bool(row and row[0])


def lock_key(name: str) -> int:
    """The 64-bit advisory lock key of a piece of work."""
    digest = hashlib.blake2b(f"brandmon:{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)
