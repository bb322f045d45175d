"""What one poll costs the database: a single SQLite instance takes no lease, an unchanged feed
(HTTP 304) runs no pipeline and two transactions (read the state, save it), and instances
sharing PostgreSQL never poll one source at the same time, nor again before it is due."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import event, select
from sqlmodel import col
from werkzeug import Request, Response

from connectors.http import make_client
from monitor.config import parse_config
from monitor.model import Cursor, Lease
from monitor.scheduler import Daemon, PollOutcome, PollSaver, SourcePoller
from monitor.storage import Storage

CONFIG = """
[storage]
url = "{db}"

[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "news"
type = "rss"
url = "{feed}"
"""

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Acme opens a store</title><link>https://example.com/1</link>
<guid isPermaLink="false">1</guid></item></channel></rss>"""


def not_modified_after_first(request: Request) -> Response:
    if request.headers.get("If-None-Match") == '"v1"':
        return Response(status=304)
    return Response(FEED, content_type="application/rss+xml", headers={"ETag": '"v1"'})


def poller(storage: Storage, db_url: str, httpserver: HTTPServer) -> SourcePoller:
    text = CONFIG.format(db=db_url, feed=httpserver.url_for("/feed"))
    return Daemon(parse_config(text, "brandmon.toml"), storage).pollers[0]


def poll(*pollers: SourcePoller) -> list[PollOutcome]:
    async def run() -> list[PollOutcome]:
        async with make_client() as client:
            return [await p.poll(client, force=True) for p in pollers]

    return asyncio.run(run())


def leases(storage: Storage) -> list[Lease]:
    with storage.session() as session:
        return list(session.scalars(select(Lease).where(col(Lease.name).startswith("source:"))))


@pytest.fixture
def sqlite_storage(tmp_path: Path) -> Any:
    store = Storage(f"sqlite:///{tmp_path / 'brandmon.db'}")
    store.create_schema()
    yield store
    store.close()


def test_a_single_sqlite_instance_polls_without_a_lease(
    sqlite_storage: Storage, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/feed").respond_with_handler(not_modified_after_first)
    source = poller(sqlite_storage, str(sqlite_storage.engine.url), httpserver)
    [outcome] = poll(source)
    assert (outcome.ok, outcome.stored) == (True, 1)
    assert not sqlite_storage.shared
    assert leases(sqlite_storage) == []


def test_an_unchanged_feed_costs_two_transactions_and_no_pipeline(
    sqlite_storage: Storage, httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    httpserver.expect_request("/feed").respond_with_handler(not_modified_after_first)
    source = poller(sqlite_storage, str(sqlite_storage.engine.url), httpserver)
    poll(source)  # saves the validator
    transactions: list[object] = []
    event.listen(sqlite_storage.engine, "begin", transactions.append)

    def no_pipeline(*args: object, **kwargs: object) -> None:
        raise AssertionError("the pipeline ran for an empty batch")

    monkeypatch.setattr(source.pipeline, "process", no_pipeline)
    [outcome] = poll(source)
    assert (outcome.ok, outcome.not_modified, outcome.found) == (True, True, 0)
    assert len(transactions) == 2  # read the state, save it
    state = sqlite_storage.source_state("news")
    assert state is not None and state.etag == '"v1"' and state.consecutive_failures == 0


def test_polls_that_end_together_save_their_states_in_one_transaction(
    sqlite_storage: Storage,
) -> None:
    saver = PollSaver(sqlite_storage)
    transactions: list[object] = []
    event.listen(sqlite_storage.engine, "begin", transactions.append)

    async def cycle() -> None:
        await asyncio.gather(
            *(saver.save(f"feed{n}", Cursor(etag=f'"{n}"'), None) for n in range(40))
        )

    asyncio.run(cycle())
    assert len(transactions) == 1
    states = [sqlite_storage.source_state(f"feed{n}") for n in range(40)]
    assert [s.etag if s else None for s in states] == [f'"{n}"' for n in range(40)]


def test_a_state_that_cannot_be_saved_fails_every_poll_waiting_for_it(
    sqlite_storage: Storage, httpserver: HTTPServer
) -> None:
    httpserver.expect_request("/feed").respond_with_handler(not_modified_after_first)
    sources = [poller(sqlite_storage, str(sqlite_storage.engine.url), httpserver)] * 3
    with sqlite_storage.engine.begin() as connection:
        connection.exec_driver_sql("DROP TABLE sourcestate")

    async def run() -> list[object]:
        async with make_client() as client:
            polls = [p.poll(client, force=True, states={}) for p in sources]
            return await asyncio.gather(*polls, return_exceptions=True)

    errors = asyncio.run(run())
    assert [type(e).__name__ for e in errors] == ["OperationalError"] * 3


def test_instances_on_postgresql_poll_a_source_once_whoever_comes(
    pg_url: str, httpserver: HTTPServer
) -> None:
    storage = Storage(pg_url)
    storage.drop_schema()  # the session's database: start empty
    storage.create_schema()
    arrived, release = threading.Event(), threading.Event()

    def slow(request: Request) -> Response:
        arrived.set()
        release.wait(timeout=10)
        return Response(FEED, content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(slow)
    first, second = poller(storage, pg_url, httpserver), poller(storage, pg_url, httpserver)
    assert storage.shared and first.locks is not second.locks

    async def overlapping() -> tuple[PollOutcome, PollOutcome, frozenset[str]]:
        async with make_client() as client:
            held = asyncio.ensure_future(first.poll(client))
            assert await asyncio.to_thread(arrived.wait, 10)
            during = await second.poll(client, force=True)  # the lock is the first's
            taken = first.locks.held  # type: ignore[attr-defined]
            release.set()
            return await held, during, taken

    try:
        done, skipped, taken = asyncio.run(overlapping())
        assert done.ok and not done.skipped
        assert skipped.skipped
        assert taken == {"source:news"}
        assert first.locks.held == frozenset()  # type: ignore[attr-defined]
        # the lock is free, and the poll saved before it was freed says: not due for 5 minutes
        [after] = poll_due(second)
        assert after.skipped
        assert len(httpserver.log) == 1
        state = storage.source_state("news")
        assert state is not None and state.next_poll is not None and state.last_poll is not None
        assert timedelta(minutes=4) < state.next_poll - state.last_poll <= timedelta(minutes=5)
        assert storage.resting_sources() == {"news"}
    finally:
        release.set()
        storage.close()


def poll_due(*pollers: SourcePoller) -> list[PollOutcome]:
    """Poll as the daemon does: only if the poll is due."""

    async def run() -> list[PollOutcome]:
        async with make_client() as client:
            return [await p.poll(client) for p in pollers]

    return asyncio.run(run())


def test_on_postgresql_a_source_asking_for_a_short_rest_still_waits_its_interval(
    pg_url: str, httpserver: HTTPServer
) -> None:
    storage = Storage(pg_url)
    storage.drop_schema()
    storage.create_schema()
    httpserver.expect_request("/feed").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "1"}
    )
    [outcome] = poll_due(poller(storage, pg_url, httpserver))
    state = storage.source_state("news")
    storage.close()
    assert not outcome.ok
    # a second later would be a second poll in one interval (5 minutes)
    assert state is not None and state.next_poll is not None and state.last_poll is not None
    assert state.next_poll - state.last_poll > timedelta(minutes=4)
