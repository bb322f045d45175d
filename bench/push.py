"""The push endpoint under a burst of senders and beside slow clients, on loopback.

    .venv/bin/python bench/push.py [--clients 500] [--per-client 5] [--slow-cap 40]

Each part runs against brandmon's push endpoint (``monitor.push``, served by uvicorn) and
against the stdlib server it replaced (``Stdlib`` below: the same transport, its handler reduced
to a push's successful path), each with a fresh SQLite storage behind the real pipeline:

1. ``--clients`` senders post ``--per-client`` mentions each, all at once, each on its own
   connection: how many got 2xx, how many an error (reset, refused, timeout) and which, whether
   every mention is stored exactly once, and the wall time.
2. Two slow clients send one byte a second, one its headers, one its body: when the server
   closed each (target: within 15 s), while a normal push is made every half second (their
   latency).  A slow client still connected after ``--slow-cap`` seconds is reported open.

Targets: every sender 2xx, no resets, every mention stored once, slow clients closed within 15 s
while the other pushes stay fast.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

import httpx

from monitor.config import WebhookSource, parse_config
from monitor.jsonl import parse_mention
from monitor.pipeline import Pipeline
from monitor.push import Ingest, WebhookServer
from monitor.storage import Storage

SECRET = "bench-push-secret"
CONFIG = """
[storage]
url = "sqlite:///{db}"

[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "bench"
type = "webhook"
port = 8787
secret_env = "BENCH_PUSH_SECRET"
"""
HEADERS = {"Authorization": f"Bearer {SECRET}"}
TEXTS = [
    "Acme lost my parcel again, third time this month",
    "Loving the new Acme kettle, boils in a minute",
    "@acme on hold for 45 minutes and still no refund",
    "Acme store on Main Street is closed today?",
    "Thanks Acme for the quick replacement!",
]


class Server(Protocol):
    @property
    def address(self) -> tuple[str, int]: ...

    def start(self) -> None: ...

    def stop(self) -> None: ...


class Stdlib:
    """The push endpoint's transport before issue 14, for comparison: ``ThreadingHTTPServer``
    (listen backlog 5, a thread per connection, no limit), a 10 s timeout on each read (which
    every byte restarts).  Its handler keeps only a push's successful path."""

    def __init__(self, source: WebhookSource, ingest: Ingest) -> None:
        class Handler(BaseHTTPRequestHandler):
            timeout = 10

            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                if not body or len(body) < length:
                    return  # the client left early (as the slow clients do at --slow-cap)
                items = json.loads(body)["mentions"]
                report = ingest([parse_mention(item, source=source.name) for item in items])
                data = json.dumps({"stored": report.stored}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer((source.bind, 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Results:
    statuses: Counter[int | str] = field(default_factory=Counter)
    burst_seconds: float = 0.0
    stored: int = 0
    distinct: int = 0
    slow: dict[str, tuple[float, str]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    meanwhile: Counter[int | str] = field(default_factory=Counter)


def mentions(client: int, per_client: int) -> dict[str, Any]:
    return {
        "mentions": [
            {
                "id": f"c{client}-m{n}",
                "source": "bench",
                "text": TEXTS[n % len(TEXTS)],
                "author": f"user{client}",
                "followers": 100 + client,
                "url": f"https://social.example/c{client}/m{n}",
            }
            for n in range(per_client)
        ]
    }


async def burst(url: str, clients: int, per_client: int) -> tuple[Counter[int | str], float]:
    """Every client posts at once, on a connection of its own: the statuses or errors, and
    the wall time."""
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=0)
    async with httpx.AsyncClient(limits=limits, timeout=60) as client:

        async def push(number: int) -> int | str:
            try:
                response = await client.post(
                    url, json=mentions(number, per_client), headers=HEADERS
                )
            except httpx.TransportError as exc:
                return type(exc).__name__
            return response.status_code

        began = time.perf_counter()
        statuses = await asyncio.gather(*(push(n) for n in range(clients)))
        return Counter(statuses), time.perf_counter() - began


def slow_client(
    address: tuple[str, int], head: bytes, drip: bytes, cap: float
) -> tuple[float, str]:
    """Send ``head``, then ``drip`` a byte a second until the server closes the connection:
    after how long, and its answer's status line (or what happened)."""
    with socket.create_connection(address) as sock:
        began = time.monotonic()
        sock.sendall(head)
        sock.settimeout(1.0)
        answer = b""
        for byte in drip:
            if time.monotonic() - began > cap:
                return time.monotonic() - began, "still open"
            try:
                chunk = sock.recv(4096)
            except TimeoutError:
                chunk = None
            except ConnectionResetError:
                break
            if chunk == b"":
                break
            answer += chunk or b""
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
        status = answer.split(b"\r\n", 1)[0].decode() or "closed without an answer"
        return time.monotonic() - began, status


def run(make: Callable[[WebhookSource, Ingest], Server], args: argparse.Namespace) -> Results:
    results = Results()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "push.db"
        config = parse_config(CONFIG.format(db=db), "bench.toml")
        storage = Storage(f"sqlite:///{db}")
        storage.create_schema()
        pipeline = Pipeline(config, storage)
        source = config.sources[0].model_copy(update={"port": 0})
        assert isinstance(source, WebhookSource)
        server = make(source, lambda ms: pipeline.process(ms)[0])
        server.start()
        url = "http://{}:{}/mentions".format(*server.address)
        try:
            results.statuses, results.burst_seconds = asyncio.run(
                burst(url, args.clients, args.per_client)
            )
            rows = storage.mentions()
            results.stored = len(rows)
            results.distinct = len({(m.source, m.external_id) for m in rows})
            results.slow, results.latencies, results.meanwhile = slow_clients(
                server.address, url, args.slow_cap
            )
        finally:
            server.stop()
            storage.close()
    return results


def slow_clients(
    address: tuple[str, int], url: str, cap: float
) -> tuple[dict[str, tuple[float, str]], list[float], Counter[int | str]]:
    line = b"POST /mentions HTTP/1.1\r\nHost: bench\r\n"
    body = json.dumps(mentions(10**6, 1)).encode()
    signed = f"Authorization: Bearer {SECRET}\r\nContent-Type: application/json\r\n"
    slow = {
        "headers": (line, b"X-Slow: " + b"a" * 1000),
        "body": (line + f"{signed}Content-Length: {len(body)}\r\n\r\n".encode(), body),
    }
    latencies: list[float] = []
    statuses: Counter[int | str] = Counter()
    with ThreadPoolExecutor(len(slow)) as pool:
        futures = {
            name: pool.submit(slow_client, address, head, drip, cap)
            for name, (head, drip) in slow.items()
        }
        number = 0
        while not all(f.done() for f in futures.values()):
            time.sleep(0.5)
            number += 1
            began = time.perf_counter()
            try:
                response = httpx.post(url, json=mentions(-number, 1), headers=HEADERS, timeout=30)
                statuses[response.status_code] += 1
            except httpx.TransportError as exc:
                statuses[type(exc).__name__] += 1
            latencies.append(time.perf_counter() - began)
        return {name: f.result() for name, f in futures.items()}, latencies, statuses


def report(args: argparse.Namespace, runs: dict[str, Results]) -> None:
    expected = args.clients * args.per_client

    def ok(r: Results) -> str:
        return f"{sum(n for s, n in r.statuses.items() if isinstance(s, int) and s < 300)}"

    def errors(r: Results) -> str:
        bad = {s: n for s, n in r.statuses.items() if not (isinstance(s, int) and s < 300)}
        return ", ".join(f"{n} {s}" for s, n in sorted(bad.items(), key=str)) or "0"

    def closed(r: Results, name: str) -> str:
        seconds, status = r.slow[name]
        if status == "still open":
            return f"open after {seconds:.0f} s"
        return f"{seconds:.1f} s ({status.removeprefix('HTTP/1.1 ')})"

    def latency(r: Results) -> str:
        ms = sorted(x * 1000 for x in r.latencies)
        if not ms:
            return "-"
        return f"{statistics.median(ms):.0f} / {ms[-1]:.0f} ms ({len(ms)} posts)"

    rows = [
        (f"burst: senders answered 2xx (of {args.clients})", ok, f"{args.clients}"),
        ("burst: errors", errors, "0"),
        (
            f"burst: mentions stored (of {expected})",
            lambda r: f"{r.stored}, {r.distinct} distinct",
            f"{expected}, each once",
        ),
        ("burst: wall time", lambda r: f"{r.burst_seconds:.2f} s", "-"),
        ("slow headers, 1 byte/s: closed after", lambda r: closed(r, "headers"), "<= 15 s"),
        ("slow body, 1 byte/s: closed after", lambda r: closed(r, "body"), "<= 15 s"),
        ("pushes meanwhile: median / max", latency, "fast"),
        ("pushes meanwhile: statuses", lambda r: repr(dict(r.meanwhile)), "all 200"),
    ]
    names = list(runs)
    width = max(len(label) for label, _, _ in rows)
    print(f"{'':{width}}  " + "  ".join(f"{n:<34}" for n in names) + "target")
    for label, cell, target in rows:
        print(f"{label:{width}}  " + "  ".join(f"{cell(runs[n]):<34}" for n in names) + target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--per-client", type=int, default=5)
    parser.add_argument("--slow-cap", type=float, default=40.0)
    args = parser.parse_args()
    os.environ["BENCH_PUSH_SECRET"] = SECRET
    runs = {
        "brandmon (uvicorn)": run(WebhookServer, args),
        "stdlib (before)": run(Stdlib, args),
    }
    report(args, runs)


if __name__ == "__main__":
    main()
