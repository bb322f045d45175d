from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import MetaData, UniqueConstraint, create_engine, event, inspect, text
from sqlalchemy.exc import OperationalError

from monitor.model import Cursor, Mention, MentionRow, utcnow
from monitor.storage import Storage, cursor_of

T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def mention(
    external_id: str,
    *,
    brand: str = "Acme",
    source: str = "x",
    url: str | None = None,
    minutes: int = 0,
) -> MentionRow:
    return Mention(
        brand=brand,
        source=source,
        source_type=source,
        external_id=external_id,
        url=url,
        canonical_url=url,
        text=f"acme post {external_id}",
        published_at=T0 + timedelta(minutes=minutes),
        fetched_at=T0,
        sentiment_compound=0.0,
        sentiment_label="neutral",
        reach_score=1.0,
    ).model_dump(exclude={"id"})


def test_the_same_mention_twice_is_stored_once(storage: Storage) -> None:
    first = storage.add_mentions([mention(str(i), minutes=i) for i in range(7)])
    assert [m["external_id"] for m in first] == [str(i) for i in range(7)]
    assert all(m["id"] is not None for m in first)
    again = storage.add_mentions([mention("3"), mention("7", minutes=7)])
    assert [m["external_id"] for m in again] == ["7"]
    assert len(storage.mentions()) == 8


def test_duplicates_within_one_batch_are_stored_once(storage: Storage) -> None:
    new = storage.add_mentions([mention("1"), mention("1"), mention("2")])
    assert [m["external_id"] for m in new] == ["1", "2"]


def test_same_canonical_url_from_another_source_is_a_duplicate(storage: Storage) -> None:
    url = "https://example.com/article"
    storage.add_mentions([mention("a", source="google-alerts", url=url)])
    new = storage.add_mentions([mention("b", source="google-news", url=url)])
    assert new == []
    assert len(storage.mentions()) == 1


def test_one_post_is_kept_once_per_brand(storage: Storage) -> None:
    new = storage.add_mentions([mention("1", brand="Acme"), mention("1", brand="Globex")])
    assert {m["brand"] for m in new} == {"Acme", "Globex"}
    assert [m.brand for m in storage.mentions(brand="Globex")] == ["Globex"]


def test_a_batch_larger_than_one_statement_is_stored_whole(db_url: str) -> None:
    storage = Storage(db_url, batch_size=10_000)
    storage.create_schema()
    rows = [mention(str(i), minutes=i) for i in range(2500)]
    new = storage.add_mentions(rows[:1200] + rows)  # the first 1,200 twice
    storage.close()
    assert sorted(int(m["external_id"]) for m in new) == list(range(2500))
    assert len({m["id"] for m in new}) == 2500
    again = Storage(db_url)
    assert len(again.mentions(since=T0 + timedelta(minutes=2000))) == 500
    again.close()


def test_each_row_keeps_its_own_times(storage: Storage) -> None:
    rows = [mention(str(i), minutes=i) for i in range(6)]
    for i, row in enumerate(rows):
        row["fetched_at"] = rows[0]["fetched_at"] if i < 3 else T0 + timedelta(hours=i)
    storage.add_mentions(rows)
    stored = sorted(storage.mentions(), key=lambda m: m.published_at)
    assert [m.published_at for m in stored] == [T0 + timedelta(minutes=i) for i in range(6)]
    assert [m.fetched_at for m in stored] == [T0] * 3 + [T0 + timedelta(hours=i) for i in (3, 4, 5)]


def test_a_database_with_the_old_unique_index_order_gets_an_index_for_known_ids(
    db_url: str,
) -> None:
    metadata = MetaData()
    table = Mention.__table__.to_metadata(metadata)
    table.constraints = {c for c in table.constraints if c.name != "uq_mention_source_id"}
    table.append_constraint(
        UniqueConstraint("brand", "source", "external_id", name="uq_mention_source_id")
    )
    engine = create_engine(db_url)
    metadata.create_all(engine)  # as brandmon created it before the reorder
    storage = Storage(db_url)
    storage.create_schema()
    storage.add_mentions([mention("1"), mention("2", brand="Globex")])
    assert storage.known_ids(["Acme"], {"x": ["1", "2", "3"]}) == {("x", "1")}
    storage.close()
    indexes = {i["name"]: i["column_names"] for i in inspect(engine).get_indexes("mention")}
    engine.dispose()
    assert indexes["ix_mention_source_id"] == ["source", "external_id"]


def test_a_new_database_has_no_extra_index_to_maintain(storage: Storage) -> None:
    indexes = {i["name"] for i in inspect(storage.engine).get_indexes("mention")}
    assert "ix_mention_source_id" not in indexes


def test_a_brands_counts_per_bucket_are_read_from_the_index_alone(tmp_path) -> None:  # type: ignore[no-untyped-def]
    """``Storage.activity`` (every detection pass, the report, the backtest) looks no mention
    up in the table: at a million mentions that is most of its time."""
    storage = Storage(f"sqlite:///{tmp_path / 'm.db'}")
    storage.create_schema()
    storage.add_mentions([mention(str(i), minutes=i) for i in range(3)])
    ran: list[tuple[str, object]] = []
    event.listen(
        storage.engine,
        "before_cursor_execute",
        lambda _c, _cursor, statement, parameters, *_: ran.append((statement, parameters)),
    )
    counts = storage.activity("Acme", T0, T0 + timedelta(hours=1), timedelta(minutes=5))
    [(query, parameters)] = ran
    with storage.engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {query}", parameters).all()
    storage.close()
    assert "COVERING INDEX ix_mention_brand_published" in plan[0][-1]
    assert [bucket.volume for bucket in counts[:2]] == [3, 0]


def test_a_mention_counts_in_the_bucket_its_time_falls_in_to_the_microsecond(
    storage: Storage,
) -> None:
    start = T0 + timedelta(seconds=7, microseconds=250_000)  # buckets off the whole second
    five = timedelta(minutes=5)
    at = {
        "first": (start, 0.0),
        "just before the second bucket": (start + five - timedelta(microseconds=1), 0.0),
        "the second's very start": (start + five, 0.0),
        "third": (start + 2 * five + timedelta(seconds=1), 0.1),
        "third, later": (start + 2 * five + timedelta(seconds=2), 0.2),
        "third, last": (start + 3 * five - timedelta(microseconds=1), 0.3),
        "after the end": (start + 3 * five, 50.0),
    }
    storage.add_mentions(
        [
            mention(name)
            | {"published_at": moment, "reach_score": reach}
            | ({"sentiment_label": "negative"} if reach else {})
            for name, (moment, reach) in at.items()
        ]
    )
    counts = storage.activity("Acme", start, start + 3 * five, five)
    assert [(c.start, c.volume, c.negative) for c in counts] == [
        (start, 2, 0),
        (start + five, 1, 0),
        (start + 2 * five, 3, 3),
    ]
    assert counts[2].negative_reach == 0.6  # not 0.1 + 0.2 + 0.3 in floats, 0.6000000000000001


def test_known_ids_are_those_stored_for_the_source_and_one_of_the_brands(
    storage: Storage,
) -> None:
    ids = [str(i) for i in range(1200)]  # more than one query's worth
    storage.add_mentions([mention(i, brand="Acme") for i in ids[:700]])
    storage.add_mentions([mention("1000", brand="Globex"), mention("1001", source="reddit")])
    assert storage.known_ids(["Acme"], {"x": ids}) == {("x", i) for i in ids[:700]}
    both = {("x", i) for i in [*ids[690:700], "1000"]}
    assert storage.known_ids(["Acme", "Globex"], {"x": ids[690:]}) == both
    assert storage.known_ids(["Initech"], {"x": ids}) == set()
    # every source in one call, each id looked up under its own source
    asked = {"x": ["1001", "5"], "reddit": ["1001", "5"]}
    assert storage.known_ids(["Acme"], asked) == {("x", "5"), ("reddit", "1001")}


def test_listing_filters_and_orders_newest_first(storage: Storage) -> None:
    storage.add_mentions([mention(str(i), minutes=10 * i) for i in range(5)])
    since = storage.mentions(since=T0 + timedelta(minutes=25))
    assert [m.external_id for m in since] == ["4", "3"]
    assert [m.external_id for m in storage.mentions(limit=2)] == ["4", "3"]


def test_priority_filter_includes_more_urgent(storage: Storage) -> None:
    rows = [mention(str(i)) for i in range(4)]
    for row, priority in zip(rows, ["P1", "P2", "P3", None], strict=True):
        row["priority"] = priority
    storage.add_mentions(rows)
    assert {m.priority for m in storage.mentions(priority="P2")} == {"P1", "P2"}
    assert {m.priority for m in storage.mentions(priority="P1")} == {"P1"}


def test_source_state_survives_a_new_storage_object(db_url: str) -> None:
    first = Storage(db_url)
    first.create_schema()
    first.record_poll_success("feed", Cursor(etag='"v1"', last_modified="Tue, 24 Nov 2026"))
    first.record_poll_failure("feed", "http_5xx: 503", next_poll=utcnow() + timedelta(minutes=5))
    state = first.record_poll_failure("feed", "timeout: read timed out")
    first.close()

    again = Storage(db_url)
    saved = again.source_state("feed")
    again.close()
    assert state.consecutive_failures == 2
    assert saved is not None
    assert saved.consecutive_failures == 2
    assert saved.last_error == "timeout: read timed out"
    assert saved.last_success is not None
    assert cursor_of(saved) == Cursor(etag='"v1"', last_modified="Tue, 24 Nov 2026")


def test_success_resets_the_failure_count(storage: Storage) -> None:
    storage.record_poll_failure("feed", "connect: refused")
    storage.record_poll_success("feed", Cursor(cursor="abc"))
    saved = storage.source_state("feed")
    assert saved is not None
    assert (saved.consecutive_failures, saved.last_error, saved.cursor) == (0, None, "abc")


def test_new_source_has_an_empty_cursor(storage: Storage) -> None:
    assert cursor_of(storage.source_state("never-polled")) == Cursor()


def test_sqlite_runs_in_wal_mode(tmp_path) -> None:
    storage = Storage(f"sqlite:///{tmp_path / 'wal.db'}")
    storage.create_schema()
    with storage.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    storage.close()


def test_pruning_deletes_only_old_mentions_in_batches(storage: Storage) -> None:
    storage.add_mentions([mention(str(i), minutes=i) for i in range(10)])
    deleted = storage.prune(T0 + timedelta(minutes=7), batch=3)
    assert deleted == 7
    assert sorted(m.external_id for m in storage.mentions()) == ["7", "8", "9"]
    assert storage.prune(T0 + timedelta(minutes=7), batch=3) == 0


def test_a_lease_has_one_owner_until_it_expires_or_is_released(storage: Storage) -> None:
    assert storage.acquire("source:feed", "a", timedelta(minutes=5))
    assert not storage.acquire("source:feed", "b", timedelta(minutes=5))
    assert storage.acquire("source:feed", "a", timedelta(minutes=5))  # renewal
    storage.release("source:feed", "b")  # not b's to release
    assert not storage.acquire("source:feed", "b", timedelta(minutes=5))
    storage.release("source:feed", "a")
    assert storage.acquire("source:feed", "b", timedelta(seconds=-1))  # already expired
    assert storage.acquire("source:feed", "a", timedelta(minutes=5))  # so a takes it over


def test_leases_of_dead_processes_on_this_host_are_freed(storage: Storage) -> None:
    from monitor.storage import instance_id

    me = instance_id()
    host = me.split(":")[0]
    gone_pid = 2**22 + 12345  # above the kernel's default pid_max: never a live process
    assert storage.acquire("source:a", f"{host}:{gone_pid}:abc", timedelta(minutes=5))
    assert storage.acquire("source:b", f"otherhost:{gone_pid}:abc", timedelta(minutes=5))
    assert storage.acquire("source:c", me, timedelta(minutes=5))
    assert storage.release_orphans(me) == 1
    assert storage.acquire("source:a", me, timedelta(minutes=5))
    assert not storage.acquire("source:b", me, timedelta(minutes=5))  # other hosts: wait


def _failing_second_insert(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the second batch's insert fail as if the database went away mid-request."""
    insert = Storage._insert
    calls: list[int] = []

    def second_fails(self: Storage, connection: Any, batch: Any) -> list[MentionRow]:
        calls.append(len(batch))
        if len(calls) == 2:
            raise OperationalError("INSERT INTO mention …", {}, Exception("connection lost"))
        return insert(self, connection, batch)

    monkeypatch.setattr(Storage, "_insert", second_fails)


def test_atomic_rows_are_stored_all_or_none(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [mention(str(i), minutes=i) for i in range(7)]  # three batches of at most three
    _failing_second_insert(monkeypatch)
    with pytest.raises(OperationalError):
        storage.add_mentions(rows, atomic=True)
    assert storage.mentions() == []
    monkeypatch.undo()
    assert len(storage.add_mentions(rows, atomic=True)) == 7
    assert len(storage.mentions()) == 7


def test_a_lost_database_is_not_taken_for_a_bad_row(
    storage: Storage, monkeypatch: pytest.MonkeyPatch
) -> None:
    _failing_second_insert(monkeypatch)
    failed: list[MentionRow] = []
    with pytest.raises(OperationalError):  # the caller waits it out or retries
        storage.add_mentions([mention(str(i), minutes=i) for i in range(7)], failed=failed)
    assert failed == []
    assert len(storage.mentions()) == 3  # the first batch's own transaction was committed


def test_instances_starting_together_on_an_empty_database_all_come_up(pg_url: str) -> None:
    import threading

    empty = Storage(pg_url)
    empty.drop_schema()
    empty.close()
    start = threading.Barrier(4)
    errors: list[BaseException] = []

    def come_up() -> None:
        storage = Storage(pg_url)
        try:
            start.wait()
            storage.create_schema()
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            storage.close()

    threads = [threading.Thread(target=come_up) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert errors == []
    storage = Storage(pg_url)
    assert storage.mentions() == []  # the schema is there, once
    storage.close()


def test_a_lease_is_judged_by_the_databases_clock_not_a_fast_machines(
    pg_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from datetime import timedelta

    import monitor.storage as storage_module

    storage = Storage(pg_url)
    storage.create_schema()
    assert storage.acquire("source:feed", "host-a:1:aaaaaa", timedelta(minutes=3))
    real = storage_module.utcnow
    monkeypatch.setattr(storage_module, "utcnow", lambda: real() + timedelta(minutes=10))
    # this machine's clock says the lease ran out long ago; the database's says it did not
    assert not storage.acquire("source:feed", "host-b:2:bbbbbb", timedelta(minutes=3))
    storage.release("source:feed", "host-a:1:aaaaaa")
    assert storage.acquire("source:feed", "host-b:2:bbbbbb", timedelta(minutes=3))
    storage.close()
