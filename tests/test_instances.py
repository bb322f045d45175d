"""Several ``brandmon run`` instances on one PostgreSQL share the work: each source is polled
once per interval by all of them together, however staggered their starts, each brand is judged
once and each alert is delivered once; the work of an instance killed with ``kill -9`` in the
middle of a poll, a judgement or a delivery is taken over within seconds (bound: 30 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from email.utils import format_datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from sqlalchemy import text
from sqlmodel import func, select
from werkzeug import Request, Response

from monitor.locks import lock_key
from monitor.model import AlertOutbox, BrandWatch, Incident, Mention, utcnow
from monitor.storage import Storage

CONFIG = """
[storage]
url = "{db}"

[network]
allow_networks = ["127.0.0.0/8", "::1/128"]

[[brands]]
name = "Acme"
keywords = ["acme"]

[detection]
bucket = "10s"
history = "1d"
warmup = "1d"
"""

SOURCE = """
[[sources]]
name = "{name}"
type = "rss"
url = "{feed}"
interval = "10s"
"""

WEBHOOK = """
[alerts]
sinks = ["webhook"]

[alerts.webhook]
url = "{hook}"
timeout = "60s"
"""

INTERVAL = 10.0
TAKE_OVER = 30.0
"""The bound on taking over a killed instance's work."""
COMPLAINT = "Acme lost my parcel, terrible service, awful and disgusting"


def feed(items: list[tuple[str, str]]) -> str:
    entries = "".join(
        f"<item><title>{title}</title><link>https://example.com/{guid}</link>"
        f'<guid isPermaLink="false">{guid}</guid>'
        f"<pubDate>{format_datetime(utcnow())}</pubDate></item>"
        for guid, title in items
    )
    channel = f"<channel><title>t</title>{entries}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'


def calm(request: Request) -> Response:
    return Response(feed([("calm", "Acme kettle review")]), content_type="application/rss+xml")


class Instance:
    """One ``brandmon run`` process, its log in a file."""

    def __init__(self, config: Path, name: str) -> None:
        self.log = config.parent / f"{name}.log"
        self.out = config.parent / f"{name}.out"
        script = Path(sys.executable).parent / "brandmon"
        with self.log.open("w") as err, self.out.open("w") as out:
            self.process = subprocess.Popen(
                [script, "run", "--config", str(config)],
                stdout=out,
                stderr=err,
                env={**os.environ, "NO_COLOR": "1", "BRANDMON_ALERT_WEBHOOK_SECRET": "s3cret"},
            )

    def running(self) -> bool:
        """Wait until it polls (it logs ``running``)."""
        return until(lambda: "running sources=" in self.log.read_text(), 60)

    def stop(self) -> str:
        """SIGTERM, then its log; it must stop cleanly."""
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(timeout=60)
        assert self.process.returncode == 0, self.log.read_text()
        return self.out.read_text()


def until(condition: Callable[[], object], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def storage(pg_url: str) -> Iterator[Storage]:
    store = Storage(pg_url)
    store.drop_schema()  # the session's database: start empty
    store.create_schema()
    yield store
    store.close()


@pytest.fixture
def instances() -> Iterator[list[Instance]]:
    """The instances a test starts; any still running at its end are killed."""
    started: list[Instance] = []
    yield started
    for instance in started:
        if instance.process.poll() is None:
            instance.process.kill()
            instance.process.wait(timeout=10)


def write_config(tmp_path: Path, pg_url: str, feeds: dict[str, str], hook: str = "") -> Path:
    text = CONFIG.format(db=pg_url)
    text += "".join(SOURCE.format(name=name, feed=url) for name, url in feeds.items())
    if hook:
        text += WEBHOOK.format(hook=hook)
    config = tmp_path / "brandmon.toml"
    config.write_text(text)
    return config


def test_three_instances_starting_at_once_on_an_empty_database_all_come_up(
    pg_url: str, httpserver: HTTPServer, tmp_path: Path, instances: list
) -> None:
    empty = Storage(pg_url)
    empty.drop_schema()
    empty.close()
    httpserver.expect_request("/feed").respond_with_handler(calm)
    config = write_config(tmp_path, pg_url, {"news": httpserver.url_for("/feed")})
    instances += [Instance(config, name) for name in ("a", "b", "c")]
    for instance in instances:  # each created what was missing of the schema, in turn
        assert instance.running(), instance.log.read_text()
    for instance in instances:
        instance.stop()


def test_two_instances_poll_judge_and_alert_exactly_once(
    pg_url: str, storage: Storage, httpserver: HTTPServer, tmp_path: Path, instances: list
) -> None:
    hits: list[float] = []
    lock = threading.Lock()
    started = time.monotonic()

    def handler(request: Request) -> Response:
        with lock:
            hits.append(time.monotonic() - started)
            n = len(hits)
        items = [("calm", "Acme kettle review")]
        if n >= 3:  # from the third poll on, a wave of complaints
            items += [(f"wave{n}-{i}", COMPLAINT) for i in range(25)]
        return Response(feed(items), content_type="application/rss+xml")

    httpserver.expect_request("/feed").respond_with_handler(handler)
    config = write_config(tmp_path, pg_url, {"news": httpserver.url_for("/feed")})
    instances += [Instance(config, "a"), Instance(config, "b")]
    # run until the wave has been paged (its bucket closes, waits one grace bucket and is
    # judged), then a while longer so a second page from the other instance would show
    until(lambda: sent_alerts(storage), 120)
    time.sleep(15)
    outputs = [instance.stop() for instance in instances]
    # one poll per 10 s interval between both instances, not one each
    elapsed = time.monotonic() - started
    gaps = [b - a for a, b in zip(hits, hits[1:], strict=False)]
    assert len(hits) <= elapsed / INTERVAL + 1, (elapsed, hits)
    assert all(gap >= INTERVAL / 2 for gap in gaps), hits
    # the wave was judged once and paged once, by whichever instance held the brand
    pages = [line for out in outputs for line in out.splitlines() if line.startswith("[")]
    assert len(pages) == 1, pages
    assert pages[0].startswith("[CRISIS] Acme") or pages[0].startswith("[WARNING] Acme")
    with storage.session() as session:
        alerts = session.scalars(select(AlertOutbox)).all()
        incidents = session.scalars(select(Incident)).all()
    assert [a.status for a in alerts] == ["sent"]
    assert len(incidents) == 1


def test_instances_started_apart_poll_each_source_once_per_interval(
    pg_url: str, storage: Storage, httpserver: HTTPServer, tmp_path: Path, instances: list
) -> None:
    hits: dict[str, list[float]] = {"a": [], "b": [], "c": []}
    started = time.monotonic()

    def handler(request: Request) -> Response:
        hits[request.path.rsplit("/", 1)[-1]].append(time.monotonic() - started)
        return calm(request)

    for name in hits:
        httpserver.expect_request(f"/feed/{name}").respond_with_handler(handler)
    feeds = {name: httpserver.url_for(f"/feed/{name}") for name in hits}
    config = write_config(tmp_path, pg_url, feeds)
    instances.append(Instance(config, "first"))
    assert until(lambda: all(hits.values()), 60)
    # past half an interval: per-instance timers that skip a source polled within half an
    # interval would poll every source twice per interval from here on
    time.sleep(INTERVAL * 0.6)
    instances.append(Instance(config, "second"))
    assert instances[1].running()
    time.sleep(INTERVAL * 4)
    for instance in instances:
        instance.stop()
    elapsed = time.monotonic() - started
    for name, times in hits.items():
        gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
        assert all(gap >= INTERVAL / 2 for gap in gaps), (name, times)
        assert len(times) <= elapsed / INTERVAL + 1, (name, elapsed, times)
    assert "poll ok source=" in instances[1].log.read_text()  # the second took its share


def test_a_poll_killed_midway_is_taken_over_within_seconds(
    pg_url: str, storage: Storage, httpserver: HTTPServer, tmp_path: Path, instances: list
) -> None:
    arrived, release = threading.Event(), threading.Event()
    hits: list[float] = []

    def first_hangs(request: Request) -> Response:
        hits.append(time.monotonic())
        if len(hits) == 1:
            arrived.set()
            release.wait(timeout=60)
        return calm(request)

    httpserver.expect_request("/feed").respond_with_handler(first_hangs)
    config = write_config(tmp_path, pg_url, {"news": httpserver.url_for("/feed")})
    killed = kill_midway(instances, config, arrived, release, patience=60)  # in its poll
    assert until(lambda: len(hits) >= 2, TAKE_OVER), "the survivor never polled"
    print(f"poll taken over {hits[1] - killed:.1f} s after kill -9")
    instances[1].stop()
    with storage.session() as session:
        assert session.scalar(select(func.count()).select_from(Mention)) == 1


def test_a_delivery_killed_midway_is_taken_over_within_seconds(
    pg_url: str, storage: Storage, httpserver: HTTPServer, tmp_path: Path, instances: list
) -> None:
    polls: list[int] = []
    arrived, release = threading.Event(), threading.Event()
    deliveries: list[tuple[float, str]] = []

    def wave(request: Request) -> Response:
        polls.append(1)
        items = [("calm", "Acme kettle review")]
        if len(polls) >= 2:  # a wave of complaints from the second poll on
            items += [(f"wave{len(polls)}-{i}", COMPLAINT) for i in range(25)]
        return Response(feed(items), content_type="application/rss+xml")

    def first_hangs(request: Request) -> Response:
        deliveries.append((time.monotonic(), request.headers["Idempotency-Key"]))
        if len(deliveries) == 1:
            arrived.set()
            release.wait(timeout=60)
        return Response("ok")

    httpserver.expect_request("/feed").respond_with_handler(wave)
    httpserver.expect_request("/hook").respond_with_handler(first_hangs)
    feeds = {"news": httpserver.url_for("/feed")}
    config = write_config(tmp_path, pg_url, feeds, hook=httpserver.url_for("/hook"))
    killed = kill_midway(instances, config, arrived, release, patience=120)  # its sink has the page
    assert until(lambda: len(deliveries) >= 2, TAKE_OVER), "the survivor never delivered"
    print(f"delivery taken over {deliveries[1][0] - killed:.1f} s after kill -9")
    assert deliveries[1][1] == deliveries[0][1]  # the same page, sent again
    assert until(lambda: sent_alerts(storage), 10)
    instances[1].stop()


def test_a_judgement_killed_midway_is_taken_over_within_seconds(
    pg_url: str, storage: Storage, httpserver: HTTPServer, tmp_path: Path, instances: list
) -> None:
    httpserver.expect_request("/feed").respond_with_handler(calm)
    config = write_config(tmp_path, pg_url, {"news": httpserver.url_for("/feed")})
    instances += [Instance(config, "a"), Instance(config, "b")]
    # an instance's first judgement of a brand re-learns a day of 10 s buckets: seconds long
    holders: list[str] = []

    def judging() -> bool:
        holders[:] = lock_holders(storage, "brand:Acme")
        return bool(holders)

    assert until(judging, 60)
    [victim] = [i for i in instances if holders[0].endswith(f":{i.process.pid}")]
    [survivor] = [i for i in instances if i is not victim]
    judged = judged_until(storage)
    killed = time.monotonic()
    victim.process.kill()  # SIGKILL, in the middle of its judgement
    victim.process.wait(timeout=10)

    def taken_over() -> bool:
        held = lock_holders(storage, "brand:Acme")
        mine = any(h.endswith(f":{survivor.process.pid}") for h in held)
        return mine or judged_until(storage) not in (None, judged)

    assert until(taken_over, TAKE_OVER), "the survivor never judged the brand"
    print(f"judgement taken over {time.monotonic() - killed:.1f} s after kill -9")
    survivor.stop()


def kill_midway(
    instances: list[Instance],
    config: Path,
    arrived: threading.Event,
    release: threading.Event,
    *,
    patience: float,
) -> float:
    """Start an instance and, once it is in the middle of its work (``arrived``; it hangs there
    until ``release``) and a second one runs, ``kill -9`` it; when it was killed."""
    instances.append(Instance(config, "killed"))
    assert arrived.wait(timeout=patience), instances[0].log.read_text()
    instances.append(Instance(config, "survivor"))
    assert instances[1].running()
    killed = time.monotonic()
    instances[0].process.kill()  # SIGKILL: it frees nothing itself
    instances[0].process.wait(timeout=10)
    release.set()
    return killed


def lock_holders(storage: Storage, name: str) -> list[str]:
    """Who holds the lock ``name``: their instance ids (``host/ns:pid:random``)."""
    key = lock_key(name) & (2**64 - 1)
    query = text(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
        " WHERE l.locktype = 'advisory' AND l.granted AND l.classid = :high"
        " AND l.objid = :low AND l.objsubid = 1 AND a.datname = current_database()"
    )
    with storage.engine.connect() as connection:
        rows = connection.execute(query, {"high": key >> 32, "low": key & (2**32 - 1)})
        return [application.rsplit(":", 1)[0] for (application,) in rows]


def judged_until(storage: Storage) -> object:
    with storage.session() as session:
        watch = session.get(BrandWatch, "Acme")
    return watch.judged_until if watch else None


def sent_alerts(storage: Storage) -> int:
    with storage.session() as session:
        return session.scalar(select(func.count()).where(AlertOutbox.status == "sent")) or 0


pytestmark = pytest.mark.skipif(
    not os.environ.get("BRANDMON_TEST_PG_URL"), reason="BRANDMON_TEST_PG_URL is not set"
)
