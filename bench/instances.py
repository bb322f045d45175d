"""Three ``brandmon run`` instances on one PostgreSQL: polls per source per interval with
staggered starts, and how soon the polls of an instance killed with ``kill -9`` are taken over.

    .venv/bin/python bench/instances.py --url postgresql://postgres@127.0.0.1:5432/test
        [--sources 120] [--intervals 12] [--delay 2]

Serves ``--sources`` RSS feeds from loopback (each answer takes ``--delay`` seconds, so polls
are always in flight), polled every 10 s.  Creates a throw-away database on the server, starts
the instances a third of an interval apart, kills the second with SIGKILL half-way through and
stops the others with SIGTERM after ``--intervals`` intervals.  Prints, per source, the polls per
interval over the run and the shortest gap between two polls; and, for each poll the killed
instance had in flight, how long until another instance polled that source.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from statistics import mean

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from monitor.model import utcnow

INTERVAL = 10.0
STAGGER = INTERVAL / 3


class Feeds(BaseHTTPRequestHandler):
    delay = 2.0
    hits: dict[int, list[tuple[float, int]]] = {}  # source -> (arrived, client port)
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802
        n = int(self.path.rsplit("/", 1)[1])
        with Feeds.lock:
            Feeds.hits.setdefault(n, []).append((time.monotonic(), self.client_address[1]))
        time.sleep(Feeds.delay)
        item = (
            f"<item><title>Acme news {n}</title><link>https://news.example.com/{n}</link>"
            f'<guid isPermaLink="false">{n}</guid><pubDate>{format_datetime(utcnow())}</pubDate>'
            "</item>"
        )
        body = f'<?xml version="1.0"?><rss version="2.0"><channel><title>f{n}</title>{item}'
        body += "</channel></rss>"
        try:
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml")
            self.end_headers()
            self.wfile.write(body.encode())
        except BrokenPipeError:  # the poller was killed
            pass

    def log_message(self, *args: object) -> None:
        pass


def config_text(url: str, port: int, sources: int) -> str:
    text = f"""
[storage]
url = "{url}"

[network]
allow_networks = ["127.0.0.0/8"]
max_concurrent_polls = 50

[[brands]]
name = "Acme"
keywords = ["acme"]
"""
    for n in range(sources):
        text += f"""
[[sources]]
name = "feed{n}"
type = "rss"
url = "http://127.0.0.1:{port}/feed/{n}"
interval = "10s"
"""
    return text


def local_ports(pid: int) -> set[int]:
    """The local TCP ports of the sockets process ``pid`` holds (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def polling(pid: int) -> None:
    """Wait until process ``pid`` has a poll in flight."""
    while True:
        ports = local_ports(pid)
        now = time.monotonic()
        with Feeds.lock:
            arrivals = [(a, port) for times in Feeds.hits.values() for a, port in times[-1:]]
        if any(port in ports and now < a + Feeds.delay / 2 for a, port in arrivals):
            return
        time.sleep(0.01)


def main(url: str, sources: int, intervals: int, delay: float) -> None:
    Feeds.delay = delay
    server = make_url(url).set(drivername="postgresql+psycopg")
    name = f"brandmon_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    feeds = ThreadingHTTPServer(("127.0.0.1", 0), Feeds)
    threading.Thread(target=feeds.serve_forever, daemon=True).start()
    script = Path(sys.executable).parent / "brandmon"
    processes: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "brandmon.toml"
        database = server.set(database=name).render_as_string(hide_password=False)
        config.write_text(config_text(database, feeds.server_address[1], sources))
        try:
            began = time.monotonic()
            for i in range(3):
                log = (Path(tmp) / f"{i}.log").open("w")
                command = [script, "run", "--config", str(config)]
                processes.append(subprocess.Popen(command, stdout=log, stderr=log))
                time.sleep(STAGGER)
            time.sleep(INTERVAL * intervals / 2)
            victim = processes[1]
            polling(victim.pid)
            victim.send_signal(signal.SIGSTOP)  # frozen: its sockets are all it ever used
            ports = local_ports(victim.pid)
            killed = time.monotonic()
            victim.kill()
            victim.wait()
            time.sleep(INTERVAL * intervals / 2)
            for process in processes:
                process.send_signal(signal.SIGTERM)
            for process in processes:
                process.wait(timeout=60)
            ended = time.monotonic()
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
            feeds.shutdown()
            with admin.connect() as connection:
                connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()
    report(began, killed, ended, ports, sources)


def report(began: float, killed: float, ended: float, ports: set[int], sources: int) -> None:
    hits = Feeds.hits
    # from the first poll on, the run is this many intervals long
    first = min(times[0][0] for times in hits.values())
    span = (ended - first) / INTERVAL
    rates = [len(hits.get(n, [])) / span for n in range(sources)]
    # the killed instance's last poll of a source, when the next came within half an interval:
    # a poll it had begun and not saved, taken over by another instance
    unfinished: dict[int, tuple[float, float]] = {}
    for n, times in hits.items():
        before = [arrived for arrived, port in times if port in ports and arrived <= killed]
        after = [arrived for arrived, _ in times if arrived > killed]
        if before and after and after[0] - before[-1] < INTERVAL / 2:
            unfinished[n] = (before[-1], after[0] - killed)
    gaps = [
        b - a
        for n, times in hits.items()
        for (a, _), (b, _) in zip(times, times[1:], strict=False)
        if unfinished.get(n, (None,))[0] != a
    ]
    print(f"sources={sources} interval={INTERVAL:.0f}s run={span:.1f} intervals")
    print(
        f"polls per source per interval: mean {mean(rates):.3f} max {max(rates):.3f}"
        f" min {min(rates):.3f}"
    )
    print(f"shortest gap between two polls of one source: {min(gaps):.2f} s")
    print(f"gaps under half an interval: {sum(g < INTERVAL / 2 for g in gaps)}")
    if unfinished:
        takeovers = [seconds for _, seconds in unfinished.values()]
        print(
            f"polls the killed instance had begun: {len(unfinished)}; taken over after"
            f" mean {mean(takeovers):.1f} s, max {max(takeovers):.1f} s"
        )
    else:
        print("the killed instance had no poll under way")
    print(f"total wall {ended - began:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("BRANDMON_TEST_PG_URL"), required=False)
    parser.add_argument("--sources", type=int, default=120)
    parser.add_argument("--intervals", type=int, default=12)
    parser.add_argument("--delay", type=float, default=2.0)
    arguments = parser.parse_args()
    if not arguments.url:
        parser.error("--url (or BRANDMON_TEST_PG_URL) is required")
    main(arguments.url, arguments.sources, arguments.intervals, arguments.delay)
