"""The push endpoint under bursts, slow clients and hostile bodies (``monitor.serving``)."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from test_webhook_source import CONFIG, MENTION, SECRET, bearer, free_port

from monitor.config import parse_config
from monitor.pipeline import Pipeline
from monitor.push import WebhookServer
from monitor.storage import Storage

Serve = Callable[..., WebhookServer]
JSON = "application/json"


@pytest.fixture
def serve(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Serve, Storage]]:
    """Starts push endpoints on one SQLite storage, with ``max_body`` and ``WebhookServer``'s
    keyword arguments (``deadline``, ``max_connections``)."""
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    db = f"sqlite:///{tmp_path / 'brandmon.db'}"
    config = parse_config(CONFIG.format(db=db, port=free_port()), "test.toml")
    storage = Storage(db)
    storage.create_schema()
    pipeline = Pipeline(config, storage)
    servers: list[WebhookServer] = []

    def start(max_body: int = 2000, **limits: Any) -> WebhookServer:
        source = config.sources[0].model_copy(update={"max_body_bytes": max_body})
        server = WebhookServer(source, lambda ms: pipeline.process(ms)[0], **limits)  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return server

    yield start, storage
    for server in servers:
        server.stop()
    storage.close()


def url(server: WebhookServer) -> str:
    return "http://{}:{}/mentions".format(*server.address)


def mention(number: int) -> dict[str, Any]:
    return {**MENTION, "id": f"burst-{number}", "url": f"https://instagram.example/p/b{number}"}


async def burst(target: str, count: int) -> list[int | str]:
    """``count`` pushes at once, each on its own connection: each one's status or error."""
    async with httpx.AsyncClient(limits=httpx.Limits(max_connections=count), timeout=30) as client:

        async def push(number: int) -> int | str:
            try:
                response = await client.post(target, json=mention(number), headers=bearer())
            except httpx.TransportError as exc:
                return type(exc).__name__
            return response.status_code

        return list(await asyncio.gather(*(push(n) for n in range(count))))


def test_a_burst_of_200_concurrent_pushes_is_answered_and_stored_once(
    serve: tuple[Serve, Storage],
) -> None:
    start, storage = serve
    statuses = asyncio.run(burst(url(start()), 200))
    assert statuses == [200] * 200
    stored = [m.external_id for m in storage.mentions()]
    assert sorted(stored) == sorted(f"burst-{n}" for n in range(200))


def trickle(port: int, head: bytes, drip: bytes, every: float = 0.2) -> tuple[float, bytes]:
    """Send ``head``, then ``drip`` one byte every ``every`` seconds, until the server closes
    the connection; the seconds that took and what the server answered."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        began = time.monotonic()
        sock.sendall(head)
        sock.settimeout(every)
        answer = b""
        for byte in drip:
            assert time.monotonic() - began < 30, "the slow client was never cut off"
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
        return time.monotonic() - began, answer


HEAD = b"POST /mentions HTTP/1.1\r\nHost: brandmon\r\n"
SLOW_HEADERS = (HEAD, b"X-Slow: " + b"a" * 1000)
SLOW_BODY = (
    HEAD + b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n",
    b"[" + b" " * 999,
)


@pytest.mark.parametrize(("head", "drip"), [SLOW_HEADERS, SLOW_BODY], ids=["headers", "body"])
def test_a_client_sending_a_byte_at_a_time_is_cut_off_at_the_deadline_and_others_are_served(
    serve: tuple[Serve, Storage], head: bytes, drip: bytes
) -> None:
    start, storage = serve
    server = start(deadline=2.0)
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(trickle, server.address[1], head, drip)
        time.sleep(0.3)
        assert httpx.post(url(server), json=MENTION, headers=bearer()).status_code == 200
        assert not slow.done()  # answered while the slow client was still connected
        seconds, answer = slow.result()
    assert 2.0 <= seconds < 4.0
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert [m.external_id for m in storage.mentions()] == ["ig-1"]


def test_a_body_over_the_limit_is_refused_before_it_is_read(serve: tuple[Serve, Storage]) -> None:
    start, _ = serve
    server = start(max_body=2000)
    with socket.create_connection(server.address) as sock:
        auth = f"Authorization: Bearer {SECRET}\r\n".encode()
        sock.sendall(HEAD + auth + b"Content-Length: 100000000\r\n\r\n" + b"[" * 1000)
        sock.settimeout(5)
        answer = b""
        while chunk := sock.recv(4096):  # the server closes the connection after answering
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"over the limit of 2000" in answer


def post(server: WebhookServer, body: bytes, content_type: str) -> httpx.Response:
    return httpx.post(url(server), content=body, headers={**bearer(), "Content-Type": content_type})


def test_json_nested_100000_deep_gets_a_clear_400(serve: tuple[Serve, Storage]) -> None:
    start, _ = serve
    server = start(max_body=1_000_000)
    response = post(server, b"[" * 100_000 + b"]" * 100_000, JSON)
    assert response.status_code == 400
    assert "nested more than 64 levels deep" in response.json()["error"]
    # brackets inside strings are text, not nesting
    deep_text = {**MENTION, "text": "Acme " + "[{" * 500}
    assert post(server, json.dumps(deep_text).encode(), JSON).status_code == 200


def test_invalid_utf8_gets_400_unless_the_charset_says_otherwise(
    serve: tuple[Serve, Storage],
) -> None:
    start, storage = serve
    server = start()
    latin1 = json.dumps({**MENTION, "text": "Acme café"}, ensure_ascii=False).encode("latin-1")
    refused = post(server, latin1, JSON)
    assert refused.status_code == 400
    assert "not valid utf-8" in refused.json()["error"]
    for unknown in ("zz-unknown", "base64"):  # base64 is a codec, but not of text
        assert post(server, latin1, f"application/json; charset={unknown}").status_code == 415
    assert post(server, latin1, 'application/json; charset="ISO-8859-1"').status_code == 200
    assert [m.text for m in storage.mentions()] == ["Acme café"]


def post_one(server: WebhookServer, number: int) -> int:
    return httpx.post(url(server), json=mention(number), headers=bearer()).status_code


def test_beyond_the_connection_limit_requests_get_503_not_a_reset(
    serve: tuple[Serve, Storage],
) -> None:
    start, _ = serve
    server = start(max_connections=2)
    held = [http.client.HTTPConnection(*server.address) for _ in range(2)]
    for number, connection in enumerate(held):  # two keep-alive connections, left open
        body = json.dumps(mention(number))
        connection.request("POST", "/mentions", body, {**bearer(), "Content-Type": JSON})
        response = connection.getresponse()
        assert response.status == 200
        response.read()
    assert post_one(server, 2) == 503
    held[0].close()  # one place free again, once the server notices
    deadline = time.monotonic() + 5
    while (status := post_one(server, 3)) == 503 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert status == 200
    held[1].close()
    # a burst over the limit: every sender gets an answer (503: retry later), none a reset
    statuses = asyncio.run(burst(url(server), 50))
    assert set(statuses) <= {200, 503}, statuses


def test_stop_closes_the_port_while_a_slow_client_is_connected(
    serve: tuple[Serve, Storage],
) -> None:
    start, _ = serve
    server = start()
    with socket.create_connection(server.address) as sock:
        sock.sendall(HEAD)
        stopper = threading.Thread(target=server.stop)
        began = time.monotonic()
        stopper.start()
        stopper.join(timeout=15)
        assert not stopper.is_alive() and time.monotonic() - began < 3
    with pytest.raises(httpx.ConnectError):
        httpx.post(url(server), json=MENTION, headers=bearer())
