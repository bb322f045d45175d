"""Feeds parsed in worker processes (``[service] workers``): the same mentions and errors as in
the daemon's own process, and a worker that dies is replaced without losing the poll."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.sources import poll_once, refused
from pytest_httpserver import HTTPServer

from connectors.rss import RssConnector, RssSource
from monitor import workers
from monitor.config import MAX_WORKERS, ConfigError, parse_config

FIXTURES = Path(__file__).parent / "fixtures" / "rss"


@pytest.fixture
def one_worker() -> Iterator[None]:
    workers.start(1)
    yield
    workers.stop()


def poll(url: str):
    return poll_once(RssConnector(RssSource(name="feed", type="rss", url=url)))


def serve(server: HTTPServer, name: str) -> str:
    server.expect_request(f"/{name}").respond_with_data(
        (FIXTURES / name).read_bytes(), content_type="application/rss+xml; charset=UTF-8"
    )
    return server.url_for(f"/{name}")


def pid() -> int:
    return os.getpid()


def worker_pid() -> int:
    return asyncio.run(workers.run(pid))


def test_work_runs_in_another_process_only_when_workers_were_started() -> None:
    assert worker_pid() == os.getpid()
    workers.start(1)
    try:
        assert worker_pid() != os.getpid()
    finally:
        workers.stop()
    assert worker_pid() == os.getpid()


def test_a_feed_parsed_in_a_worker_gives_the_same_mentions(httpserver: HTTPServer) -> None:
    url = serve(httpserver, "google_news.xml")
    here = poll(url).mentions
    workers.start(1)
    try:
        there = poll(url).mentions
    finally:
        workers.stop()
    assert len(here) == 2
    assert there == here


def test_a_malformed_feed_is_the_same_error_from_a_worker(
    httpserver: HTTPServer, one_worker: None
) -> None:
    httpserver.expect_request("/page").respond_with_data(
        "<html><body>not a feed</body></html>", content_type="text/html"
    )
    error = refused(lambda: poll(httpserver.url_for("/page")))
    assert error.kind == "malformed"
    assert "is not an RSS or Atom feed (text/html" in str(error)


def test_a_worker_killed_mid_cycle_loses_no_poll(httpserver: HTTPServer, one_worker: None) -> None:
    url = serve(httpserver, "google_news.xml")
    victim = worker_pid()
    os.kill(victim, signal.SIGKILL)
    # the poll after the death is parsed in this process, the next ones by a new worker
    assert len(poll(url).mentions) == 2
    assert len(poll(url).mentions) == 2
    assert worker_pid() not in (victim, os.getpid())


def test_the_number_of_workers_is_checked_and_defaults_to_the_spare_cores() -> None:
    brand = '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n'
    with pytest.raises(ConfigError) as caught:
        parse_config(f"[service]\nworkers = -1\n{brand}", "brandmon.toml")
    [problem] = caught.value.problems
    assert str(problem).startswith("brandmon.toml:2: service.workers:")
    assert parse_config(f"[service]\nworkers = 0\n{brand}", "x.toml").service.worker_count == 0
    spare = len(os.sched_getaffinity(0)) - 1
    assert parse_config(brand, "x.toml").service.worker_count == min(MAX_WORKERS, spare)


@pytest.fixture
def no_semaphores(monkeypatch: pytest.MonkeyPatch) -> None:
    """A sandbox without /dev/shm: POSIX semaphores, which a process pool needs, fail."""

    def refused(*args: object, **kwargs: object) -> None:
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr("multiprocessing.synchronize.SemLock.__init__", refused)


@pytest.fixture
def no_processes(monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine at its process limit: starting one fails (EAGAIN)."""

    def refused(*args: object, **kwargs: object) -> None:
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr("multiprocessing.process.BaseProcess.start", refused)


@pytest.mark.parametrize("refusal", ["no_semaphores", "no_processes"])
def test_without_semaphores_or_processes_the_work_stays_in_this_process(
    refusal: str, request: pytest.FixtureRequest, caplog: pytest.LogCaptureFixture
) -> None:
    request.getfixturevalue(refusal)
    workers.start(1)
    assert worker_pid() == os.getpid()
    assert "no worker processes" in caplog.text


ORPHANED = """
import asyncio, os, sys, time
from monitor import workers
from monitor.config import parse_config
from monitor.scoring_workers import ScoringWorkers

workers.start(1)
config = parse_config('[[brands]]\\nname = "Acme"\\nkeywords = ["acme"]\\n', "t.toml")
scoring = ScoringWorkers(config, 1)
ingesting = scoring._pool.submit(os.getpid).result()
print(asyncio.run(workers.run(os.getpid)), ingesting, flush=True)
time.sleep(60)
"""


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state != "Z"  # exited, waiting to be reaped by whichever process adopted it


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="reads process states from /proc")
def test_workers_end_when_the_process_that_started_them_is_killed() -> None:
    import subprocess
    import sys
    import time

    parent = subprocess.Popen([sys.executable, "-c", ORPHANED], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pids = [int(pid) for pid in parent.stdout.readline().split()]
    assert len(pids) == 2 and parent.pid not in pids and all(map(_running, pids))
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10 * workers.PARENT_CHECK + 10
    while any(map(_running, pids)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(map(_running, pids))


@pytest.mark.usefixtures("no_semaphores")
def test_without_semaphores_ingest_scores_in_its_own_process(
    caplog: pytest.LogCaptureFixture,
) -> None:
    from monitor.model import RawMention
    from monitor.pipeline import Pipeline
    from monitor.storage import Storage

    config = parse_config('[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n', "t.toml")
    storage = Storage("sqlite://")
    storage.create_schema()
    pipeline = Pipeline(config, storage, workers=2)
    posts = [
        RawMention(source="t", external_id=str(i), text=f"Acme lost order {i}") for i in range(3)
    ]
    reports = list(pipeline.process_all([posts]))
    pipeline.close()
    assert [report.stored for report, _ in reports] == [3]
    assert "no worker processes" in caplog.text


def test_workers_start_when_made_not_when_first_given_work() -> None:
    """They get ready (a new interpreter, imports, a scorer) while the daemon or ``ingest``
    does, not after its first feed or batch."""
    import multiprocessing

    from monitor.scoring_workers import ScoringWorkers

    config = parse_config('[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n', "t.toml")
    before = set(multiprocessing.active_children())
    workers.start(2)
    scoring = ScoringWorkers(config, 2)
    try:
        assert len(set(multiprocessing.active_children()) - before) == 4
    finally:
        scoring.close()
        workers.stop()
