"""One full poll cycle of 1,000 feeds served from loopback, and time to first alert.

    .venv/bin/python bench/poll.py [--feeds 1000] [--no-wave] [--compare-reader]
                                   [--postgres postgresql+psycopg://postgres@127.0.0.1/test]

A cold cycle (a fresh database, every feed new) and a warm one (every feed answers 304), with
wall and CPU time; ``--compare-reader`` first runs the same two cycles through lemon24's
``reader`` (installed with pip into a throwaway venv in the temp directory, not a dependency of
brandmon) over the same feed farm and prints the ratios; ``--postgres`` runs brandmon's two
cycles again storing into PostgreSQL.  Then:

A realistic mix: a third of the feeds answer 304 Not Modified (they were polled before), most
are small, some are large (200 entries).  Prints the cycle's wall time and the process's peak
memory (targets: <= 10 s, <= 300 MB), then serves a wave of complaints on one feed and reports
how long it took from serving it to the alert being delivered.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import socket
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from monitor import scheduler, workers
from monitor.config import parse_config
from monitor.scheduler import Daemon
from monitor.storage import Storage

WAVE_FEED = 0


def feed_xml(n: int, entries: int, wave: bool) -> bytes:
    now = format_datetime(datetime.now(UTC))
    items = []
    for i in range(entries):
        title = f"Acme news {n}-{i}: store opening and new menu"
        if wave:
            title = f"Acme made me sick, disgusting kitchen, terrible and awful {n}-{i}"
        items.append(
            f"<item><title>{title}</title><link>https://news.example.com/{n}/{i}/{wave}</link>"
            f'<guid isPermaLink="false">{n}-{i}-{wave}</guid><pubDate>{now}</pubDate></item>'
        )
    channel = f"<channel><title>f{n}</title>{''.join(items)}</channel>"
    return f'<?xml version="1.0"?><rss version="2.0">{channel}</rss>'.encode()


class Feeds(BaseHTTPRequestHandler):
    wave = False
    all_not_modified = False  # every feed answers 304 to its validator, not a third of them

    def do_GET(self) -> None:  # noqa: N802
        n = int(self.path.rsplit("/", 1)[1])
        etag = f'"{n}-{Feeds.wave}"'  # the wave changes feed 0, and so its validator
        unchanged = Feeds.all_not_modified or n % 3 == 0
        if unchanged and self.headers.get("If-None-Match") == etag:
            self.send_response(304)
            self.end_headers()
            return
        entries = 200 if n % 50 == 0 else 10
        body = feed_xml(
            n, 30 if n == WAVE_FEED and Feeds.wave else entries, n == WAVE_FEED and Feeds.wave
        )
        self.send_response(200)
        self.send_header("Content-Type", "application/rss+xml")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("ETag", etag)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def serve(port: int, wave: bool, all_not_modified: bool) -> None:
    """The feed server, in a process of its own so it does not compete for our GIL."""
    Feeds.wave = wave
    Feeds.all_not_modified = all_not_modified
    # a backlog like a web server's (nginx: 511), not socketserver's 5: with 32 polls at once
    # connecting, a full backlog drops connections that are only retried a second later
    ThreadingHTTPServer.request_queue_size = 128
    server = ThreadingHTTPServer(("127.0.0.1", port), Feeds)
    server.daemon_threads = True
    server.serve_forever()


def start_server(port: int, wave: bool, all_not_modified: bool = False) -> multiprocessing.Process:
    process = multiprocessing.Process(
        target=serve, args=(port, wave, all_not_modified), daemon=True
    )
    process.start()
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("feed server did not start")


def cycle(daemon: Daemon) -> tuple[float, float, int]:
    """One ``run_once`` of ``daemon``: its wall time, this process's CPU time, failed polls."""
    wall, cpu = time.perf_counter(), time.process_time()
    outcomes = scheduler.run(daemon.run_once())
    return (
        time.perf_counter() - wall,
        time.process_time() - cpu,
        sum(not o.ok for o in outcomes),
    )


def report(name: str, feeds: int, figures: tuple[float, float, int]) -> None:
    wall, cpu, failed = figures
    print(
        f"{name}: {wall:.2f} s wall, {cpu:.2f} CPU-s, {cpu / feeds * 1000:.2f} ms CPU a feed,"
        f" {failed} failed"
    )


COLD_WARM = ("cold (fresh database)", "warm (every feed answers 304)")
READER = """
import sys, time
from reader import make_reader

url, feeds, db = sys.argv[1], int(sys.argv[2]), sys.argv[3]
reader = make_reader(db)
for n in range(feeds):
    reader.add_feed(f"{url}/feed/{n}")
for _ in ("cold", "warm"):
    wall, cpu = time.perf_counter(), time.process_time()
    reader.update_feeds(workers=32, scheduled=False)  # every feed, due or not
    print(time.perf_counter() - wall, time.process_time() - cpu, flush=True)
"""


def reader_python() -> Path:
    """A venv of its own with ``reader`` installed (made once, kept in the temp directory)."""
    venv = Path(tempfile.gettempdir()) / "brandmon-bench-reader"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        # reader's vendored feedparser imports sgmllib, which reader does not require
        subprocess.run([python, "-m", "pip", "install", "-q", "reader", "sgmllib3k"], check=True)
    return python


def run_reader(port: int, feeds: int) -> list[tuple[float, float]]:
    """``reader``'s cold and warm cycles over the farm: (wall, CPU) each, whole process CPU."""
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run(
            [reader_python(), "-c", READER, f"http://127.0.0.1:{port}", str(feeds), f"{tmp}/r.db"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
    return [
        (float(wall), float(cpu))
        for wall, cpu in (line.split() for line in out.split("\n") if line)
    ]


def config_text(url: str, sources: str, detection: str = "") -> str:
    """The bench's config: the default detection (5-minute buckets) unless ``detection``."""
    return (
        f'[storage]\nurl = "{url}"\n'
        '[network]\nallow_networks = ["127.0.0.0/8"]\n'
        f"{detection}"
        '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n' + sources
    )


FAST_DETECTION = '[detection]\nbucket = "10s"\nhistory = "1d"\nwarmup = "1d"\n'
"""For the time to first alert: 10-second buckets, so a bench run waits seconds, not minutes."""


def postgres_cycles(url: str, sources: str) -> list[tuple[float, float, int]]:
    """The cold and warm cycles again, stored in PostgreSQL at ``url`` (its tables dropped
    first)."""
    empty = Storage(url)
    empty.drop_schema()
    empty.close()
    config = parse_config(config_text(url, sources), "pg.toml")
    storage = Storage(config.storage.url)
    storage.create_schema()
    daemon = Daemon(config, storage)
    try:
        return [cycle(daemon), cycle(daemon)]
    finally:
        daemon.locks.close()
        storage.close()


def main(feeds: int, wave: bool, compare_reader: bool = False, postgres: str | None = None) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_server(port, wave=False, all_not_modified=True)
    sources = "".join(
        f'\n[[sources]]\nname = "feed{n}"\ntype = "rss"\nurl = "http://127.0.0.1:{port}/feed/{n}"\n'
        for n in range(feeds)
    )
    with tempfile.TemporaryDirectory() as tmp:
        config = parse_config(config_text(f"sqlite:///{Path(tmp) / 'poll.db'}", sources), "b.toml")
        storage = Storage(config.storage.url)
        storage.create_schema()
        daemon = Daemon(config, storage)
        workers.start(config.service.worker_count)  # as `brandmon run` does
        peer = run_reader(port, feeds) if compare_reader else []
        # cold: a fresh database, every feed new; warm: every feed answers 304
        sqlite = [cycle(daemon), cycle(daemon)]
        shared = postgres_cycles(postgres, sources) if postgres else []
        for n, (name, figures) in enumerate(zip(COLD_WARM, sqlite, strict=True)):
            report(f"{name} cycle of {feeds} feeds", feeds, figures)
            if peer:
                wall, cpu = peer[n]
                print(
                    f"  reader, the same cycle: {wall:.2f} s wall, {cpu:.2f} CPU-s;"
                    f" brandmon / reader: {figures[0] / wall:.2f}x wall (target <= 1.0),"
                    f" {figures[1] / cpu:.2f}x CPU"
                )
            if shared:
                wall, cpu, failed = shared[n]
                print(
                    f"  on PostgreSQL: {wall:.2f} s wall, {cpu / feeds * 1000:.2f} ms CPU a feed,"
                    f" {failed} failed; {wall / figures[0]:.2f}x SQLite's wall time"
                    + (f", {wall / peer[n][0]:.2f}x reader's" if peer else "")
                )
        server.terminate()
        server.join()
        server = start_server(port, wave=False)  # a third answer 304, the rest serve again
        figures = cycle(daemon)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"poll cycle of {feeds} feeds (1/3 answer 304): {figures[0]:.2f} s (target <= 10 s),"
            f" {figures[1]:.2f} CPU-s, {figures[2]} failed,"
            f" peak memory {peak:.0f} MB (target <= 300 MB)"
        )
        if not wave:
            storage.close()
            server.terminate()
            return

        server.terminate()
        server.join()
        server = start_server(port, wave=True)
        served = time.perf_counter()
        fast = parse_config(config_text(str(storage.engine.url), sources, FAST_DETECTION), "f.toml")
        wave_daemon = Daemon(fast.model_copy(update={"sources": fast.sources[:1]}), storage)
        while not storage.outbox_counts():
            scheduler.run(wave_daemon.run_once())
            time.sleep(1)
        print(
            f"time to first alert after the wave was served: {time.perf_counter() - served:.1f} s"
            " (10 s buckets; the bucket still filling is judged as if whole)"
        )
        storage.close()
    server.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    parser.add_argument(
        "--no-wave", action="store_true", help="skip the time-to-first-alert measure"
    )
    parser.add_argument(
        "--compare-reader",
        action="store_true",
        help="run the same cycles through lemon24's reader (pip-installed into a throwaway venv)",
    )
    parser.add_argument(
        "--postgres", help="also run the cold and warm cycles on this PostgreSQL (tables dropped)"
    )
    arguments = parser.parse_args()
    try:
        main(arguments.feeds, not arguments.no_wave, arguments.compare_reader, arguments.postgres)
    finally:
        workers.stop()
