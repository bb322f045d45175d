"""``brandmon run`` as a real process: it polls on schedule, contains failures, stops on SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
from pytest_httpserver import HTTPServer
from sqlalchemy.exc import OperationalError
from werkzeug import Request, Response

from monitor.config import parse_config
from monitor.scheduler import Daemon
from monitor.storage import Storage

FEED = """<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>
<item><title>Acme kettle review</title><link>https://example.com/1</link>
<guid isPermaLink="false">1</guid></item></channel></rss>"""

CONFIG = """
[storage]
url = "sqlite:///{db}"

[network]
allow_networks = ["127.0.0.0/8", "::1/128"]

[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "good"
type = "rss"
url = "{good}"
interval = "10s"

[[sources]]
name = "down"
type = "rss"
url = "{down}"
interval = "10s"
"""


def write_config(tmp_path: Path, server: HTTPServer) -> Path:
    path = tmp_path / "brandmon.toml"
    path.write_text(
        CONFIG.format(
            db=tmp_path / "brandmon.db", good=server.url_for("/good"), down=server.url_for("/down")
        )
    )
    return path


def both_polled(storage: Storage) -> bool:
    try:
        return storage.source_state("down") is not None and bool(storage.mentions())
    except OperationalError:  # the daemon has not created the schema yet
        return False


def test_daemon_polls_and_exits_cleanly_on_sigterm(httpserver: HTTPServer, tmp_path: Path) -> None:
    httpserver.expect_request("/good").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/down").respond_with_data("busy", status=503)
    config = write_config(tmp_path, httpserver)
    script = Path(sys.executable).parent / "brandmon"
    process = subprocess.Popen(
        [script, "run", "--config", str(config)], stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 20
        storage = Storage(f"sqlite:///{tmp_path / 'brandmon.db'}")
        while time.monotonic() < deadline and not both_polled(storage):
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, stderr
    assert [m.external_id for m in storage.mentions()] == ["1"]
    down = storage.source_state("down")
    storage.close()
    assert down is not None and down.consecutive_failures >= 1
    assert "http_5xx" in (down.last_error or "")
    assert "poll ok source=good" in stderr
    assert "poll failed source=down" in stderr


def test_a_backed_off_source_is_skipped_until_it_is_due(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    hits: list[str] = []

    def down(request: Request) -> Response:
        hits.append(request.path)
        return Response("slow down", status=429, headers={"Retry-After": "3600"})

    httpserver.expect_request("/good").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/down").respond_with_handler(down)
    config = parse_config(write_config(tmp_path, httpserver).read_text(), "brandmon.toml")
    storage = Storage(config.storage.url)
    storage.create_schema()
    daemon = Daemon(config, storage)

    async def poll_twice() -> list[bool]:
        from connectors.http import make_client

        skipped = []
        async with make_client() as client:
            for _ in range(2):
                for poller in daemon.pollers:
                    outcome = await poller.poll(client)
                    skipped.append(outcome.skipped)
        return skipped

    # the second round skips both: "down" rests (Retry-After), "good" was polled moments ago
    # (by this or another instance sharing the database)
    assert asyncio.run(poll_twice()) == [False, False, True, True]
    state = storage.source_state("down")
    storage.close()
    assert hits == ["/down"]  # Retry-After: 3600 was honoured
    assert state is not None and state.next_poll is not None
    assert state.next_poll > state.last_poll  # type: ignore[operator]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(predicate, timeout: float = 20.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("condition not reached in time")


def test_service_notifies_systemd_reports_health_and_reloads(
    httpserver: HTTPServer, tmp_path: Path
) -> None:
    httpserver.expect_request("/good").respond_with_data(FEED, content_type="application/rss+xml")
    httpserver.expect_request("/down").respond_with_data("busy", status=503)
    port = free_port()
    config = write_config(tmp_path, httpserver)
    good_config = config.read_text() + f'\n[service]\nhealth = "127.0.0.1:{port}"\n'
    config.write_text(good_config)
    notify_path = tmp_path / "notify.sock"
    systemd = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    systemd.bind(str(notify_path))
    systemd.settimeout(20)
    environment = {**os.environ, "NOTIFY_SOCKET": str(notify_path), "WATCHDOG_USEC": "2000000"}
    script = Path(sys.executable).parent / "brandmon"
    process = subprocess.Popen(
        [script, "run", "--config", str(config)],
        stderr=subprocess.PIPE,
        text=True,
        env=environment,
    )
    messages: list[str] = []

    def received(text: str) -> bool:
        while not any(text in m for m in messages):
            messages.append(systemd.recv(4096).decode())
        return True

    try:
        received("READY=1")
        received("WATCHDOG=1")
        received("STATUS=last poll: good ok")

        def healthz() -> httpx.Response:
            return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)

        # the two sources poll concurrently: wait for the failing one to have reported too
        wait_for(lambda: healthz().json()["sources"]["down"]["consecutive_failures"] >= 1)
        health = healthz()
        assert health.status_code == 200
        report = health.json()
        assert report["ok"] is True and report["storage"] is True
        metrics = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        assert 'brandmon_mentions_ingested_total{brand="Acme",source="good"} 1.0' in metrics
        assert 'brandmon_poll_errors_total{kind="http_5xx",source="down"}' in metrics
        # the brand's level is published once its detector has re-learned the stored history
        wait_for(
            lambda: (
                'brandmon_brand_level{brand="Acme"} 0.0'
                in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            )
        )

        config.write_text(good_config.replace('name = "Acme"', 'name = "Acme"\nbogus = 1'))
        process.send_signal(signal.SIGHUP)
        received("RELOADING=1")
        received("READY=1")
        assert httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200

        config.write_text(
            good_config.replace('interval = "10s"', 'interval = "10s"\nenabled = false', 1)
        )
        process.send_signal(signal.SIGHUP)
        received("RELOADING=1")
        received("STATUS=polling 1 source(s)")
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=40)
        received("STOPPING=1")
    finally:
        process.kill()
        systemd.close()
    assert process.returncode == 0, stderr
    assert "reload failed, keeping the running config" in stderr
    assert "brands[0].bogus: unknown key 'bogus'" in stderr
    assert "config reloaded sources=1" in stderr
    # logs off a terminal are JSON lines
    first = next(line for line in stderr.splitlines() if line.startswith("{"))
    assert json.loads(first)["level"] in ("info", "warning")


def test_kill_9_during_a_poll_loses_nothing(httpserver: HTTPServer, tmp_path: Path) -> None:
    arrived = threading.Event()
    release = threading.Event()

    def first_is_slow(request: Request) -> Response:
        if not arrived.is_set():
            arrived.set()
            release.wait(timeout=30)  # hold the first poll open until the daemon is dead
        return Response(FEED, content_type="application/rss+xml")

    # not an ordered expectation: the two sources poll concurrently, in either order
    httpserver.expect_request("/good").respond_with_handler(first_is_slow)
    other = FEED.replace("/1<", "/2<").replace(">1<", ">2<")  # a different item
    httpserver.expect_request("/down").respond_with_data(other, content_type="application/rss+xml")
    config = write_config(tmp_path, httpserver)
    script = Path(sys.executable).parent / "brandmon"
    first = subprocess.Popen([script, "run", "--config", str(config)], stderr=subprocess.DEVNULL)
    try:
        assert arrived.wait(timeout=20)
        first.kill()  # SIGKILL: no clean-up at all
        first.wait(timeout=10)
    finally:
        release.set()
    storage = Storage(f"sqlite:///{tmp_path / 'brandmon.db'}")
    # SQLite is one instance's own: its polls take no lease, so none is left to wait for
    assert not storage_owner(storage, "source:good")
    result = subprocess.run(
        [script, "run", "--once", "--config", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert "good: 1 found, 1 new" in result.stdout
    assert sorted(m.external_id for m in storage.mentions(brand="Acme")) == ["1", "2"]
    storage.close()


def storage_owner(storage: Storage, lease: str) -> str:
    from monitor.model import Lease

    with storage.session() as session:
        row = session.get(Lease, lease)
    return row.owner if row and row.owner else ""
