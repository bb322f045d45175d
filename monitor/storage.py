"""Storage on SQLite (embedded default, WAL mode) or PostgreSQL, through one SQLAlchemy engine.

Inserts are batched and idempotent: ``INSERT … ON CONFLICT DO NOTHING`` against the unique
constraints on (source, external id, brand) and (brand, canonical URL), so a mention seen twice,
by one instance or by several at once, is stored once, and the caller learns which rows are new.
A row the database refuses does not take its batch down with it: it is found, logged and
skipped (see ``Storage.add_mentions``).
"""

from __future__ import annotations

import functools
import json
import logging
import math
import operator
import os
import socket
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    BigInteger,
    DateTime,
    Engine,
    String,
    bindparam,
    case,
    cast,
    delete,
    event,
    func,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DataError, DBAPIError, IntegrityError, SQLAlchemyError
from sqlmodel import Session, col, create_engine

from monitor import migrations
from monitor.alert import Payload
from monitor.model import (
    AlertOutbox,
    Cursor,
    Incident,
    IncidentAck,
    LabelledText,
    Lease,
    Mention,
    MentionLabel,
    MentionRow,
    MentionState,
    SourceState,
    utcnow,
)
from monitor.vocabulary import CATEGORIES, PRIORITIES, SENTIMENTS

log = logging.getLogger(__name__)

_ROW_ERRORS = (DataError, IntegrityError, ValueError, OverflowError)
"""What one row's values can make an insert raise: a value the column or constraint refuses, or
one the driver cannot send (``UnicodeEncodeError``, an integer beyond 64 bits).  A lost or locked
database (``OperationalError``) is not one: the caller waits it out or retries."""


def instance_id() -> str:
    """A name for this process among the instances sharing a database (for leases):
    ``host/pid-namespace:pid:random``.  Containers may share a host name, never a pid namespace,
    so ``release_orphans`` judges a pid only where it means the same process."""
    try:
        namespace = "".join(filter(str.isdigit, os.readlink("/proc/self/ns/pid")))
    except OSError:  # not Linux
        namespace = "0"
    return f"{socket.gethostname()}/{namespace}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _alive(pid: int) -> bool:
    """Whether another process with this pid runs here (our own pid means a predecessor)."""
    if pid <= 0 or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _insert_for(dialect: str) -> Callable[..., Any]:
    """The ``insert`` of ``dialect``, which has ``on_conflict_do_nothing`` and friends (each
    dialect imported when used: SQLite needs no PostgreSQL module, nor its driver)."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert
    from sqlalchemy.dialects import sqlite

    return sqlite.insert


def engine_for(url: str) -> Engine:
    """Create an engine; ``postgresql://`` means psycopg 3, the driver we ship."""
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, pool_pre_ping=True)
    engine = create_engine(parsed, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _sqlite_pragmas(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        if parsed.database not in (None, "", ":memory:"):
            cursor.execute("PRAGMA journal_mode=WAL")
            # Copy the log into the database every 10,000 pages (40 MB) instead of 1,000: a
            # page written by several batches is copied once (storing: 20 -> 16.5 us a row).
            cursor.execute("PRAGMA wal_autocheckpoint=10000")
        cursor.execute("PRAGMA synchronous=NORMAL")
        # 8 MB of pages a connection instead of 2: new mentions land at random in the unique
        # indexes' leaf pages, which at a million mentions 2 MB did not hold (storing 30,000
        # read 77,000 pages from the files; with 8 MB 59,000, as many as into 10,000 mentions).
        # A connection holds the pages it has read, up to that.
        cursor.execute("PRAGMA cache_size=-8000")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine


def bucket_floor(moment: datetime, bucket: timedelta) -> datetime:
    """The start of the bucket holding ``moment`` (buckets are aligned to the Unix epoch)."""
    size = bucket.total_seconds()
    return datetime.fromtimestamp(moment.timestamp() // size * size, UTC)


@dataclass(slots=True)
class Activity:
    """One bucket of a brand's mentions: how many, how many negative, and their reach."""

    start: datetime
    volume: int = 0
    negative: int = 0
    negative_reach: float = 0.0


class UnknownMention(LookupError):
    """No stored mention has the id a label was given for."""

    def __init__(self, mention_id: int) -> None:
        super().__init__(f"no stored mention has id {mention_id}")
        self.mention_id = mention_id


SCHEMA_LOCK = 0x6272616E64  # "brand": the advisory lock key that serialises schema creation


class Storage:
    """All reads and writes of brandmon's tables."""

    def __init__(self, url: str, *, batch_size: int = 500) -> None:
        self.engine = engine_for(url)
        self.batch_size = batch_size
        self._dialect_insert = _insert_for(self.engine.dialect.name)
        # Every Mention column but the id, with the dialect's conversion of its values
        # (SQLite stores datetimes as text in SQLAlchemy's format, which queries compare with).
        dialect = self.engine.dialect
        columns = Mention.__table__.columns
        self._conversions: list[tuple[int, Callable[[Any], Any]]] = []
        """The position among ``_MENTION_COLUMNS`` and the conversion of each column that has
        one (a few: the others' values are sent as they are)."""
        for index, name in enumerate(_MENTION_COLUMNS):
            convert = columns[name].type.dialect_impl(dialect).bind_processor(dialect)
            if convert is not None:
                reused = _reusing_last(convert) if name == "fetched_at" else convert
                self._conversions.append((index, reused))

    def create_schema(self) -> None:
        """Bring the database to this release's schema (``monitor.migrations``): create it on an
        empty database, migrate one made by an earlier release.  On PostgreSQL this runs under
        a transaction-level advisory lock, so instances starting at the same instant take
        turns instead of colliding (``pg_type`` unique violations), and the later ones find
        nothing left to do."""
        with self.engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.exec_driver_sql("SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
            migrations.upgrade(connection)

    def drop_schema(self) -> None:
        """Remove every table and the schema's version (tests and benches start from an empty
        database)."""
        with self.engine.begin() as connection:
            migrations.drop_all(connection)

    def close(self) -> None:
        self.engine.dispose()

    @contextmanager
    def session(self) -> Iterator[Session]:
        with Session(self.engine, expire_on_commit=False) as session:
            yield session

    def add_mentions(
        self,
        rows: Iterable[MentionRow],
        *,
        atomic: bool = False,
        failed: list[MentionRow] | None = None,
    ) -> list[MentionRow]:
        """Store mention rows; return those not stored before, with their ``id``.

        Rows are plain dicts of ``Mention`` columns: building ORM objects would cost more than
        scoring the text.  They are stored ``batch_size`` at a time, each batch in its own
        transaction; a row the database refuses is found by halving its batch, logged in one
        line, appended to ``failed`` and skipped, and the rest of the batch is stored.  With
        ``atomic``, all rows are stored in one transaction or, if any fails, none (the error
        is raised): a pushed request is stored whole or not at all.
        """
        batches = self._batches(rows)
        if atomic:
            everything = list(batches)  # scored before the transaction opens: it stays short
            with self.engine.begin() as connection:
                return [row for batch in everything for row in self._insert(connection, batch)]
        stored: list[MentionRow] = []
        for batch in batches:
            stored += self._insert_or_skip(batch, [] if failed is None else failed)
        return stored

    def _batches(self, rows: Iterable[MentionRow]) -> Iterator[list[MentionRow]]:
        """``rows`` in lists of ``batch_size``, without the repeats of an id or canonical URL."""
        batch: list[MentionRow] = []
        seen_ids: set[tuple[str, str, str]] = set()
        seen_urls: set[tuple[str, str]] = set()
        for row in rows:
            key = (row["source"], row["external_id"], row["brand"])
            url = row.get("canonical_url")
            if key in seen_ids or (url and (row["brand"], url) in seen_urls):
                continue
            seen_ids.add(key)
            if url:
                seen_urls.add((row["brand"], url))
            batch.append(row)
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch

    def _insert_or_skip(
        self, batch: list[MentionRow], failed: list[MentionRow]
    ) -> list[MentionRow]:
        """Insert ``batch`` in one transaction; if a row's values make it fail, insert its two
        halves likewise, down to the row that cannot be stored, which goes to ``failed``."""
        try:
            with self.engine.begin() as connection:
                return self._insert(connection, batch)
        except _ROW_ERRORS as exc:
            if len(batch) > 1:
                middle = len(batch) // 2
                return self._insert_or_skip(batch[:middle], failed) + self._insert_or_skip(
                    batch[middle:], failed
                )
            row = batch[0]
            log.error(
                "mention not stored source=%s id=%s brand=%s: %s",
                row["source"],
                row["external_id"],
                row["brand"],
                _reason(exc),
            )
            failed.append(row)
            return []

    def known_ids(
        self, brands: Sequence[str], ids: Mapping[str, Sequence[str]]
    ) -> set[tuple[str, str]]:
        """Which of the external ``ids`` (by source) are already stored for one of ``brands``,
        as (source, id) pairs.

        Feeds re-serve the items they served before; checking first spares scoring them again.
        One connection serves every source: each one taken costs a ping and a rollback, which
        on PostgreSQL took as long as the queries (a batch from seven sources: seven of each).
        """
        wanted = set(brands)
        known: set[tuple[str, str]] = set()
        with self.engine.connect() as connection:
            for source, source_ids in ids.items():
                for start in range(0, len(source_ids), 500):
                    # Brands are filtered here, not in SQL: "brand IN (…) AND external_id IN
                    # (…)" costs one index search per brand and id.
                    chunk = source_ids[start : start + 500]
                    sql = _known_sql(self.engine.dialect.paramstyle, len(chunk))
                    rows = connection.exec_driver_sql(sql, (source, *chunk))
                    known.update((source, i) for i, brand in rows if brand in wanted)
        return known

    def _insert(self, connection: Connection, batch: Sequence[MentionRow]) -> list[MentionRow]:
        """Insert ``batch`` in ``connection``'s transaction; return the rows that were new."""
        if self.engine.dialect.name == "postgresql":
            inserted = _copy_in(connection, batch)
        else:
            inserted = []
            for start in range(0, len(batch), _ROWS_PER_STATEMENT):
                rows = batch[start : start + _ROWS_PER_STATEMENT]
                sql = _insert_sql(self.engine.dialect.paramstyle, len(rows))
                inserted += connection.exec_driver_sql(sql, self._values(rows)).all()
        by_key = {(row["source"], row["external_id"], row["brand"]): row for row in batch}
        new: list[MentionRow] = []
        for row_id, source, external_id, brand in inserted:
            row = by_key[(source, external_id, brand)]
            row["id"] = row_id
            new.append(row)
        return new

    def _values(self, rows: Sequence[MentionRow]) -> tuple[Any, ...]:
        """The parameters of ``_insert_sql`` for ``rows``: each row's ``_MENTION_COLUMNS``,
        converted as the dialect stores them."""
        values: list[Any] = []
        for row in rows:
            row_values = list(_mention_values(row))
            for index, convert in self._conversions:
                row_values[index] = convert(row_values[index])
            values += row_values
        return tuple(values)

    def mentions(
        self,
        *,
        brand: str | None = None,
        since: datetime | None = None,
        priority: str | None = None,
        limit: int | None = None,
    ) -> list[Mention]:
        """Stored mentions, newest first.  ``priority="P2"`` means P1 and P2."""
        query = select(Mention).order_by(col(Mention.published_at).desc(), col(Mention.id).desc())
        if brand is not None:
            query = query.where(Mention.brand == brand)
        if since is not None:
            query = query.where(Mention.published_at >= since)
        if priority is not None:
            allowed = PRIORITIES[: PRIORITIES.index(priority) + 1]
            query = query.where(col(Mention.priority).in_(allowed))
        if limit is not None:
            query = query.limit(limit)
        with self.session() as session:
            return list(session.scalars(query))

    def activity(
        self, brand: str, start: datetime, end: datetime, bucket: timedelta
    ) -> list[Activity]:
        """All, negative and negative-reach totals of ``brand`` per bucket in [start, end),
        empty buckets included."""
        # Counted by the database, a bucket a row: fetching a month of a busy brand's rows to
        # count them here cost twice as much (every detection pass, the report and the
        # backtest read these).  Reach is summed in thousandths, as integers, so the sums come
        # out the same whatever order the rows are added in and on every database.
        table = Mention.__table__
        at = table.c.published_at
        negative = table.c.sentiment_label == "negative"
        index = self._bucket_index(at, start, bucket).label("bucket")
        query = (
            select(
                index,
                func.count(),
                func.sum(case((negative, 1), else_=0)),
                func.sum(
                    case(
                        (negative, cast(func.round(table.c.reach_score * 1000), BigInteger)),
                        else_=0,
                    )
                ),
            )
            .where(table.c.brand == brand, at >= start, at < end)
            .group_by(index)
        )
        buckets = [
            Activity(start + bucket * i) for i in range(max(0, math.ceil((end - start) / bucket)))
        ]
        with self.engine.connect() as connection:
            for i, volume, negatives, reach in connection.execute(query):
                found = buckets[i]  # PostgreSQL sums integers as numeric: Decimal
                found.volume, found.negative = int(volume), int(negatives)
                found.negative_reach = int(reach or 0) / 1000
        return buckets

    def _bucket_index(self, at: Any, start: datetime, bucket: timedelta) -> Any:
        """The SQL for the bucket, counted from ``start``, that the time ``at`` falls in, in
        whole microseconds (so a mention at a bucket's very start is never rounded into the
        bucket before)."""
        size = bucket // timedelta(microseconds=1)
        if self.engine.dialect.name == "sqlite":
            # SQLite keeps times as text in UTC, "2026-11-30 12:05:00.250000": whole seconds
            # from strftime, the microseconds from the text
            origin, written = start.astimezone(UTC), type_coerce(at, String)
            seconds = cast(func.strftime("%s", written), BigInteger) - int(
                origin.replace(microsecond=0).timestamp()
            )
            micros = cast(func.substr(written, 21), BigInteger)
            return (seconds * 1_000_000 + micros - origin.microsecond) // size
        elapsed = func.extract("epoch", at - bindparam("origin", start, DateTime(timezone=True)))
        return cast(elapsed * 1_000_000, BigInteger) // size

    def triage_counts(
        self, brand: str, start: datetime, end: datetime
    ) -> dict[tuple[str | None, str | None], int]:
        """How many mentions of ``brand`` in [start, end) fell in each (category, priority)."""
        query = (
            select(Mention.category, Mention.priority, func.count())
            .where(
                Mention.brand == brand, Mention.published_at >= start, Mention.published_at < end
            )
            .group_by(Mention.category, Mention.priority)
        )
        with self.session() as session:
            return {(c, p): n for c, p, n in session.execute(query)}

    def incidents(self, brand: str, start: datetime, end: datetime) -> list[Incident]:
        """Incidents of ``brand`` active at some time in [start, end), oldest first."""
        query = (
            select(Incident)
            .where(
                Incident.brand == brand,
                Incident.started_at < end,
                or_(col(Incident.resolved_at).is_(None), col(Incident.resolved_at) >= start),
            )
            .order_by(col(Incident.started_at))
        )
        with self.session() as session:
            return list(session.scalars(query))

    def top_negative(
        self,
        brand: str,
        since: datetime,
        until: datetime,
        limit: int,
        *,
        least_reach: float | None = None,
    ) -> list[Mention]:
        """The negative mentions of ``brand`` in [since, until) with the highest reach; with
        ``least_reach``, only those that reach as far (the index tells them without the rows:
        during an incident each bucket is searched for loud mentions, and most have none)."""
        wanted = [
            Mention.brand == brand,
            Mention.sentiment_label == "negative",
            Mention.published_at >= since,
            Mention.published_at < until,
        ]
        if least_reach is not None:
            wanted.append(col(Mention.reach_score) >= least_reach)
        query = (
            select(Mention)
            .where(*wanted)
            .order_by(col(Mention.reach_score).desc(), col(Mention.id))
            .limit(limit)
        )
        with self.session() as session:
            return list(session.scalars(query))

    def label_mention(
        self,
        mention_id: int,
        sentiment: str,
        category: str | None = None,
        by: str | None = None,
    ) -> MentionLabel:
        """Store the team's ``sentiment`` (and triage ``category``) for a mention, replacing
        the label it had.  ``ValueError`` for a sentiment or category that does not exist,
        ``UnknownMention`` for an id no stored mention has."""
        if sentiment not in SENTIMENTS:
            raise ValueError(
                f"unknown sentiment {sentiment!r}: expected one of {', '.join(SENTIMENTS)}"
            )
        if category is not None and category not in CATEGORIES:
            raise ValueError(
                f"unknown category {category!r}: expected one of {', '.join(CATEGORIES)}"
            )
        if by is not None and len(by) > _LABELLER_CHARS:
            raise ValueError(f"the labeller's name is longer than {_LABELLER_CHARS} characters")
        label = MentionLabel(
            mention_id=mention_id,
            sentiment=sentiment,
            category=category,
            labelled_by=by,
            labelled_at=utcnow(),
        )
        values = label.model_dump()
        insert = self._dialect_insert(MentionLabel).values(values)
        upsert = insert.on_conflict_do_update(
            index_elements=["mention_id"],
            set_={name: insert.excluded[name] for name in values if name != "mention_id"},
        )
        with self.session() as session:
            if session.scalar(select(Mention.id).where(Mention.id == mention_id)) is None:
                raise UnknownMention(mention_id)
            session.execute(upsert)
            session.commit()
        return label

    def labelled_mentions(self, language: str | None = None) -> list[LabelledText]:
        """Every labelled mention's text and label (of one ``language``, if given), in the
        order of their ids."""
        query = (
            select(
                Mention.text,
                Mention.language,
                MentionLabel.sentiment,
                MentionLabel.category,
                MentionLabel.mention_id,
            )
            .join(Mention, col(Mention.id) == col(MentionLabel.mention_id))
            .order_by(col(MentionLabel.mention_id))
        )
        if language is not None:
            query = query.where(Mention.language == language)
        with self.session() as session:
            return [LabelledText(*row) for row in session.execute(query)]

    def prune(self, before: datetime, *, batch: int = 1000) -> int:
        """Delete mentions published before ``before``, but those the team labelled (what
        ``brandmon train`` learns from, gathered over months), ``batch`` rows per transaction
        so writers (polls) are never held up for long; return how many were deleted."""
        deleted = 0
        labelled = select(MentionLabel.mention_id)
        while True:
            with self.session() as session:
                oldest = list(
                    session.scalars(
                        select(Mention.id)
                        .where(Mention.published_at < before, col(Mention.id).not_in(labelled))
                        .limit(batch)
                    )
                )
                # Whether they are labelled is asked again as they are deleted: one may have been
                # labelled since.  SQLite does not enforce foreign keys: a state left behind
                # would be that of whichever mention is given its id next.
                state, mention = col(MentionState.mention_id), col(Mention.id)
                session.execute(
                    delete(MentionState).where(state.in_(oldest), state.not_in(labelled))
                )
                result = session.execute(
                    delete(Mention).where(mention.in_(oldest), mention.not_in(labelled))
                )
                session.commit()
            deleted += result.rowcount
            if result.rowcount < batch:
                return deleted

    def acquire(self, name: str, owner: str, ttl: timedelta) -> bool:
        """Take the lease ``name`` for ``ttl`` unless another owner holds an unexpired one.

        One conditional UPDATE decides, so of several instances racing for it exactly one wins
        (PostgreSQL re-checks the condition on the locked row; SQLite serialises writers).  On
        PostgreSQL the expiry is judged by the database's clock, which every instance shares:
        a machine whose clock runs ahead cannot take a lease another still holds.
        """
        now = self._clock()
        with self.session() as session:
            session.execute(self._dialect_insert(Lease).values(name=name).on_conflict_do_nothing())
            taken = session.execute(
                update(Lease)
                .where(
                    Lease.name == name,
                    or_(
                        col(Lease.owner).is_(None),
                        Lease.owner == owner,
                        col(Lease.until).is_(None),
                        col(Lease.until) < now,
                    ),
                )
                .values(owner=owner, until=now + ttl)
            )
            session.commit()
        return taken.rowcount == 1

    @property
    def shared(self) -> bool:
        """Whether several instances may share this database: PostgreSQL's can, and they divide
        the work by advisory locks (``monitor.locks``) and the sources by their ``next_poll``; a
        SQLite file belongs to one instance, which needs no lock to poll."""
        return self.engine.dialect.name != "sqlite"

    def _clock(self) -> Any:
        """Now, for leases: the database's clock (naive UTC, like the stored times) on
        PostgreSQL, shared by every instance; this process's on SQLite (one instance)."""
        if self.engine.dialect.name == "postgresql":
            return func.timezone("UTC", func.now(), type_=DateTime())
        return utcnow()

    def release(self, name: str, owner: str) -> None:
        with self.session() as session:
            session.execute(
                update(Lease)
                .where(Lease.name == name, Lease.owner == owner)
                .values(owner=None, until=None)
            )
            session.commit()

    def release_orphans(self, owner: str) -> int:
        """Free the leases that earlier processes on this host left behind (a ``kill -9``, a
        crash), so a restarted daemon does not wait for them to expire."""
        host, _, _ = owner.partition(":")
        freed = 0
        with self.session() as session:
            held = session.scalars(
                select(Lease).where(col(Lease.owner).startswith(f"{host}:"))
            ).all()
            for lease in held:
                pid = (lease.owner or "").split(":")[1]
                if lease.owner != owner and not _alive(int(pid) if pid.isdigit() else -1):
                    lease.owner, lease.until = None, None
                    session.add(lease)
                    freed += 1
            session.commit()
        return freed

    def ping(self) -> bool:
        """Whether the database answers."""
        try:
            with self.engine.connect() as connection:
                connection.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    def outbox_counts(self) -> dict[tuple[str, str], int]:
        """Alerts in the outbox per (status, sink)."""
        query = select(AlertOutbox.status, AlertOutbox.sink, func.count()).group_by(
            AlertOutbox.status, AlertOutbox.sink
        )
        with self.session() as session:
            return {(status, sink): count for status, sink, count in session.execute(query)}

    def source_state(self, source: str) -> SourceState | None:
        with self.session() as session:
            return session.get(SourceState, source)

    @functools.cached_property
    def _state_upsert(self) -> Any:
        """``INSERT … ON CONFLICT (source) DO UPDATE`` of every ``SourceState`` column, built
        once: the statement with its values inline is compiled anew at every call."""
        table = SourceState.__table__
        insert = self._dialect_insert(table)
        return insert.on_conflict_do_update(
            index_elements=[table.c.source],
            set_={c.name: insert.excluded[c.name] for c in table.columns if c.name != "source"},
        )

    def source_states(self, sources: Sequence[str]) -> dict[str, SourceState]:
        """The states of ``sources`` that were ever polled, read in one transaction."""
        table = SourceState.__table__
        states: dict[str, SourceState] = {}
        with self.engine.connect() as connection:
            for start in range(0, len(sources), 500):
                query = select(table).where(table.c.source.in_(sources[start : start + 500]))
                states.update(
                    (row.source, SourceState(**row._mapping)) for row in connection.execute(query)
                )
        return states

    def source_state_now(self, source: str) -> tuple[SourceState | None, datetime]:
        """``source``'s state (``None``: never polled) and the time, read in one transaction.
        On PostgreSQL the time is the database's, which every instance shares: whether a source
        is due is never judged by a machine whose clock runs ahead."""
        # Core statements on a connection: the ORM session costs more than the query here, and
        # an unchanged feed's poll is little more than this and ``record_poll_success``.
        with self.engine.begin() as connection:
            row = connection.execute(_STATE_QUERY, {"source": source}).first()
            now = utcnow()
            if self.engine.dialect.name == "postgresql":
                now = connection.execute(select(self._clock())).scalar_one().replace(tzinfo=UTC)
        return None if row is None else SourceState(**row._mapping), now

    def resting_sources(self) -> set[str]:
        """The sources whose next poll is later than now, by the database's clock."""
        table = SourceState.__table__
        query = select(table.c.source).where(table.c.next_poll > self._clock())
        with self.engine.connect() as connection:
            return set(connection.scalars(query))

    def record_poll_success(
        self,
        source: str,
        cursor: Cursor,
        *,
        next_poll: datetime | None = None,
    ) -> None:
        """Save a successful poll's cursor in one transaction of one upsert."""
        self.record_poll_successes([(source, cursor, next_poll)])

    def record_poll_successes(self, polls: Sequence[tuple[str, Cursor, datetime | None]]) -> None:
        """Save successful polls' ``(source, cursor, next_poll)`` in one transaction."""
        now = utcnow()
        values = [
            {
                "source": source,
                "cursor": cursor.cursor,
                "etag": cursor.etag,
                "last_modified": cursor.last_modified,
                "last_poll": now,
                "last_success": now,
                "last_error": None,
                "consecutive_failures": 0,
                "next_poll": next_poll,
            }
            for source, cursor, next_poll in polls
        ]
        with self.engine.begin() as connection:
            connection.execute(self._state_upsert, values)

    def record_poll_failure(
        self,
        source: str,
        error: str,
        *,
        next_poll: datetime | None = None,
    ) -> SourceState:
        """Count a failed poll."""
        with self.session() as session:
            state = session.get(SourceState, source) or SourceState(source=source)
            state.last_poll = utcnow()
            state.last_error = error
            state.consecutive_failures += 1
            state.next_poll = next_poll
            session.add(state)
            session.commit()
            return state

    # The web console's reads, and the team's queue (``MentionState``).

    def recent_incidents(self, limit: int = 100) -> list[Incident]:
        """Every brand's incidents, the open ones first, then the latest started."""
        query = (
            select(Incident)
            .order_by(col(Incident.resolved_at).is_not(None), col(Incident.started_at).desc())
            .limit(limit)
        )
        with self.session() as session:
            return list(session.scalars(query))

    def incident(self, incident_id: int) -> tuple[Incident, IncidentAck | None] | None:
        """One incident and what the team said about it from Slack, or None."""
        with self.session() as session:
            incident = session.get(Incident, incident_id)
            return None if incident is None else (incident, session.get(IncidentAck, incident_id))

    def mentions_by_id(self, ids: Sequence[int]) -> list[Mention]:
        """The stored mentions among ``ids``, in the order of ``ids``."""
        with self.session() as session:
            query = select(Mention).where(col(Mention.id).in_(ids))
            found = {mention.id: mention for mention in session.scalars(query)}
        return [found[i] for i in ids if i in found]

    def mention_label(self, mention_id: int) -> MentionLabel | None:
        with self.session() as session:
            return session.get(MentionLabel, mention_id)

    def find_mentions(
        self,
        *,
        text: str = "",
        author: str = "",
        brand: str = "",
        source: str = "",
        language: str = "",
        start: datetime | None = None,
        end: datetime | None = None,
        queue: bool = False,
        limit: int = 100,
    ) -> list[Mention]:
        """Mentions whose text and author contain ``text`` and ``author`` (ignoring case), of
        ``brand``, ``source`` and ``language`` where given, published in [start, end), newest
        first.  With ``queue``: only triaged mentions not marked done, P1 first."""
        query = select(Mention)
        for column, wanted in ((Mention.text, text), (Mention.author, author)):
            if wanted:
                query = query.where(func.lower(column).contains(wanted.lower(), autoescape=True))
        for column, wanted in (
            (Mention.brand, brand),
            (Mention.source, source),
            (Mention.language, language),
        ):
            if wanted:
                query = query.where(column == wanted)
        if start is not None:
            query = query.where(Mention.published_at >= start)
        if end is not None:
            query = query.where(Mention.published_at < end)
        newest = (col(Mention.published_at).desc(), col(Mention.id).desc())
        if queue:
            done = select(MentionState.mention_id).where(col(MentionState.done_at).is_not(None))
            query = query.where(
                col(Mention.priority).is_not(None), col(Mention.id).not_in(done)
            ).order_by(col(Mention.priority), *newest)
        else:
            query = query.order_by(*newest)
        with self.session() as session:
            return list(session.scalars(query.limit(limit)))

    def mention_states(self, ids: Sequence[int]) -> dict[int, MentionState]:
        query = select(MentionState).where(col(MentionState.mention_id).in_(ids))
        with self.session() as session:
            return {state.mention_id: state for state in session.scalars(query)}

    def set_mention_state(
        self,
        mention_id: int,
        *,
        assigned_to: str | None = None,
        done_by: str | None = None,
    ) -> None:
        """Assign a mention to someone, or mark it done by someone (the other field is kept);
        ``UnknownMention`` for an id no stored mention has."""
        values: dict[str, Any] = {}
        if assigned_to is not None:
            values["assigned_to"] = assigned_to
        if done_by is not None:
            values.update(done_by=done_by, done_at=utcnow())
        for name in ("assigned_to", "done_by"):
            if len(values.get(name) or "") > _LABELLER_CHARS:
                raise ValueError(f"a name is longer than {_LABELLER_CHARS} characters")
        insert = self._dialect_insert(MentionState).values(mention_id=mention_id, **values)
        upsert = insert.on_conflict_do_update(
            index_elements=["mention_id"], set_={name: insert.excluded[name] for name in values}
        )
        with self.session() as session:
            if session.scalar(select(Mention.id).where(Mention.id == mention_id)) is None:
                raise UnknownMention(mention_id)
            session.execute(upsert)
            session.commit()


_MENTION_COLUMNS = [column.name for column in Mention.__table__.columns if column.name != "id"]
_COLUMN_LIST = ", ".join(_MENTION_COLUMNS)
_mention_values = operator.itemgetter(*_MENTION_COLUMNS)
"""A ``MentionRow``'s values, in the order of ``_MENTION_COLUMNS``."""
_STATE_QUERY = select(SourceState.__table__).where(
    SourceState.__table__.c.source == bindparam("source")
)
_ROWS_PER_STATEMENT = 1000
_LABELLER_CHARS = MentionLabel.__table__.columns["labelled_by"].type.length
"""21,000 parameters: under SQLite's limit (32,766) and PostgreSQL's (65,535)."""


@functools.lru_cache(maxsize=32)  # one per batch length: mostly the batch size, and the rest
def _insert_sql(paramstyle: str, rows: int) -> str:
    """``INSERT … VALUES (…), (…) … ON CONFLICT DO NOTHING RETURNING`` for ``rows`` mentions,
    with the driver's placeholders.

    Written out rather than compiled by SQLAlchemy per batch: its per-row parameter handling
    cost as much as SQLite's insert itself (10 us a row).
    """
    one = f"({_placeholders(paramstyle, len(_MENTION_COLUMNS))})"
    return (
        f"INSERT INTO mention ({_COLUMN_LIST}) VALUES {', '.join([one] * rows)}"
        " ON CONFLICT DO NOTHING RETURNING id, source, external_id, brand"
    )


@functools.lru_cache(maxsize=32)
def _known_sql(paramstyle: str, ids: int) -> str:
    """The query of ``known_ids`` for ``ids`` ids, written out as ``_insert_sql`` is: SQLAlchemy
    expanding its ``IN`` cost five times what the database spends on it."""
    return (
        f"SELECT external_id, brand FROM mention WHERE source = {_placeholders(paramstyle, 1)}"
        f" AND external_id IN ({_placeholders(paramstyle, ids)})"
    )


def _placeholders(paramstyle: str, count: int) -> str:
    """``count`` of the driver's parameter placeholders, comma-separated."""
    return ", ".join(["?" if paramstyle == "qmark" else "%s"] * count)


_STAGE = "mention_stage"
_CREATE_STAGE = (
    f"CREATE TEMPORARY TABLE IF NOT EXISTS {_STAGE} ON COMMIT DELETE ROWS"
    f" AS SELECT {_COLUMN_LIST} FROM mention WITH NO DATA"
)
_COPY_STAGE = f"COPY {_STAGE} ({_COLUMN_LIST}) FROM STDIN"
_MOVE_STAGE = (
    f"WITH staged AS (DELETE FROM {_STAGE} RETURNING *)"
    f" INSERT INTO mention ({_COLUMN_LIST})"
    f" SELECT {_COLUMN_LIST} FROM staged"
    " ON CONFLICT DO NOTHING RETURNING id, source, external_id, brand"
)


def _copy_in(connection: Connection, batch: Sequence[MentionRow]) -> list[Any]:
    """PostgreSQL: ``COPY`` ``batch`` into a temporary table of the connection's own, then move
    it to ``mention`` in one ``INSERT … SELECT … ON CONFLICT DO NOTHING RETURNING``.  Five times
    the rows per second of a multi-row ``INSERT``, whose 21,000 parameters PostgreSQL parses and
    binds one by one (``bench/store.py``).  The table has the columns' types and no
    constraints: a value a constraint refuses fails the move, and the batch is halved as for any
    other refused row."""
    import psycopg  # the driver of every PostgreSQL engine, so loaded already

    cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    statement = _COPY_STAGE
    try:
        cursor.execute(_CREATE_STAGE)
        with cursor.copy(_COPY_STAGE) as copy:
            for row in batch:
                copy.write_row(_mention_values(row))
        statement = _MOVE_STAGE
        cursor.execute(_MOVE_STAGE)
        return cursor.fetchall()
    except psycopg.Error as exc:  # as SQLAlchemy would have raised it: DataError, IntegrityError…
        raise DBAPIError.instance(statement, None, exc, psycopg.Error) from exc
    finally:
        cursor.close()


def _reason(exc: Exception) -> str:
    """The first line of the database's (or driver's) own message: SQLAlchemy's adds the
    statement and its parameters, which is long and holds the mention's text."""
    cause = exc.orig if isinstance(exc, DBAPIError) else exc
    lines = str(cause).strip().splitlines()
    return f"{type(cause).__name__}: {lines[0] if lines else ''}"


def _reusing_last(convert: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``convert`` reusing its result while it is given the same object: the rows of a batch
    share one ``fetched_at``, and converting a datetime costs 2 us."""
    last: tuple[Any, Any] = (object(), None)

    def converted(value: Any) -> Any:
        nonlocal last
        seen = last  # one read, one write: threads sharing the Storage see a consistent pair
        if seen[0] is not value:
            seen = last = (value, convert(value))
        return seen[1]

    return converted


def cursor_of(state: SourceState | None) -> Cursor:
    """The connector cursor saved in a source's state (empty for a new source)."""
    if state is None:
        return Cursor()
    return Cursor(cursor=state.cursor, etag=state.etag, last_modified=state.last_modified)


def enqueue(
    session: Session,
    *,
    key: str,
    brand: str,
    kind: str,
    payload: Payload,
    sinks: Sequence[str],
) -> None:
    """Add one outbox row per sink to ``session``'s transaction (a known key is a no-op): the
    watcher queues an incident's alerts with the incident change, ``alerts.outbox`` delivers
    them."""
    insert = _insert_for(session.get_bind().dialect.name)
    body = json.dumps(payload.to_json(), ensure_ascii=False, default=str)
    now = utcnow()
    rows = [
        {
            "idempotency_key": f"{key}:{sink}",
            "brand": brand,
            "sink": sink,
            "kind": kind,
            "payload": body,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for sink in sinks
    ]
    session.execute(insert(AlertOutbox).on_conflict_do_nothing(), rows)
