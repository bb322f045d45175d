"""One full poll cycle of 1,000 feeds served from loopback, and time to first alert.

    .venv/bin/python bench/poll.py [--feeds 1000]

A realistic mix: a third of the feeds answer 304 Not Modified (they were polled before), most
are small, some are large (200 entries).  Prints the cycle's wall time and the process's peak
memory (targets: <= 10 s, <= 300 MB), then serves a wave of complaints on one feed and reports
how long it took from serving it to the alert being delivered.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import resource
import socket
import tempfile
import time
from datetime import UTC, datetime
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

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

    def do_GET(self) -> None:  # noqa: N802
        n = int(self.path.rsplit("/", 1)[1])
        etag = f'"{n}-{Feeds.wave}"'  # the wave changes feed 0, and so its validator
        if n % 3 == 0 and self.headers.get("If-None-Match") == etag:
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


def serve(port: int, wave: bool) -> None:
    """The feed server, in a process of its own so it does not compete for our GIL."""
    Feeds.wave = wave
    server = ThreadingHTTPServer(("127.0.0.1", port), Feeds)
    server.daemon_threads = True
    server.serve_forever()


def start_server(port: int, wave: bool) -> multiprocessing.Process:
    process = multiprocessing.Process(target=serve, args=(port, wave), daemon=True)
    process.start()
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("feed server did not start")


def main(feeds: int) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = start_server(port, wave=False)
    sources = "".join(
        f'\n[[sources]]\nname = "feed{n}"\ntype = "rss"\nurl = "http://127.0.0.1:{port}/feed/{n}"\n'
        for n in range(feeds)
    )
    with tempfile.TemporaryDirectory() as tmp:
        text = (
            f'[storage]\nurl = "sqlite:///{Path(tmp) / "poll.db"}"\n'
            '[network]\nallow_networks = ["127.0.0.0/8"]\n'
            '[detection]\nbucket = "10s"\nhistory = "1d"\nwarmup = "1d"\n'
            '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n' + sources
        )
        config = parse_config(text, "bench.toml")
        storage = Storage(config.storage.url)
        storage.create_schema()
        daemon = Daemon(config, storage)
        asyncio.run(daemon.run_once())  # first cycle: everything is new, validators saved
        started = time.perf_counter()
        outcomes = asyncio.run(daemon.run_once())
        cycle = time.perf_counter() - started
        failed = [o for o in outcomes if not o.ok]
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        print(
            f"poll cycle of {feeds} feeds: {cycle:.2f} s (target <= 10 s), "
            f"{len(failed)} failed, peak memory {peak:.0f} MB (target <= 300 MB)"
        )

        server.terminate()
        server.join()
        server = start_server(port, wave=True)
        served = time.perf_counter()
        wave_daemon = Daemon(config.model_copy(update={"sources": config.sources[:1]}), storage)
        while not storage.outbox_counts():
            asyncio.run(wave_daemon.run_once())
            time.sleep(1)
        print(
            f"time to first alert after the wave was served: {time.perf_counter() - served:.1f} s"
            " (10 s buckets: the bucket must close, plus one bucket of grace)"
        )
        storage.close()
    server.terminate()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=1000)
    main(parser.parse_args().feeds)
