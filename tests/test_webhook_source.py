"""The push source: other tools POST mentions to brandmon's webhook endpoint."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from monitor.config import parse_config
from monitor.pipeline import Pipeline
from monitor.push import WebhookServer
from monitor.signing import sign
from monitor.storage import Storage

SECRET = "s3cret-webhook-value"

CONFIG = """
[storage]
url = "{db}"

[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "zapier"
type = "webhook"
port = {port}
secret_env = "TEST_WEBHOOK_SECRET"
max_body_bytes = 2000
"""

MENTION = {
    "id": "ig-1",
    "source": "instagram",
    "text": "Acme lost my parcel again",
    "author": "mia",
    "followers": 1200,
    "url": "https://instagram.example/p/1",
    "published_at": "2026-11-20T10:00:00Z",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def endpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Storage]]:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    db = f"sqlite:///{tmp_path / 'brandmon.db'}"
    config = parse_config(CONFIG.format(db=db, port=free_port()), "test.toml")
    storage = Storage(db)
    storage.create_schema()
    pipeline = Pipeline(config, storage)
    server = WebhookServer(config.sources[0], lambda ms: pipeline.process(ms)[0])  # type: ignore[arg-type]
    server.start()
    yield f"http://{server.address[0]}:{server.address[1]}/mentions", storage
    server.stop()
    storage.close()


def bearer(secret: str = SECRET) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


def test_pushed_mentions_are_stored_once(endpoint: tuple[str, Storage]) -> None:
    url, storage = endpoint
    batch = {"mentions": [MENTION, {**MENTION, "id": "ig-2", "text": "nothing about us"}]}
    first = httpx.post(url, json=batch, headers=bearer())
    assert first.status_code == 200, first.text
    assert first.json() == {"received": 2, "stored": 1, "duplicates": 0, "unmatched": 1}
    again = httpx.post(url, json=batch, headers=bearer())  # a sender retrying a lost response
    assert again.json() == {"received": 2, "stored": 0, "duplicates": 1, "unmatched": 1}
    [stored] = storage.mentions(brand="Acme")
    assert (stored.source, stored.source_type, stored.author) == ("zapier", "instagram", "mia")
    assert stored.author_followers == 1200
    assert stored.sentiment_label is not None


def test_a_signed_body_is_accepted_and_a_bad_or_stale_signature_is_not(
    endpoint: tuple[str, Storage],
) -> None:
    url, storage = endpoint
    body = json.dumps([MENTION]).encode()
    now = str(int(time.time()))

    def post(timestamp: str, signature: str) -> httpx.Response:
        headers = {
            "Content-Type": "application/json",
            "X-Brandmon-Timestamp": timestamp,
            "X-Brandmon-Signature": signature,
        }
        return httpx.post(url, content=body, headers=headers)

    assert post(now, sign("wrong", now, body)).status_code == 401
    stale = str(int(time.time()) - 3600)  # a captured request replayed an hour later
    assert post(stale, sign(SECRET, stale, body)).status_code == 401
    assert storage.mentions() == []
    assert post(now, sign(SECRET, now, body)).json()["stored"] == 1


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        (bearer("not-the-secret"), 401),
        ({"Authorization": "Basic abc"}, 401),
    ],
)
def test_unauthenticated_pushes_are_refused(
    endpoint: tuple[str, Storage], headers: dict[str, str], status: int
) -> None:
    url, storage = endpoint
    response = httpx.post(url, json=MENTION, headers=headers)
    assert response.status_code == status
    assert SECRET not in response.text
    assert storage.mentions() == []


def test_one_bad_mention_refuses_the_whole_batch_and_names_it(
    endpoint: tuple[str, Storage],
) -> None:
    url, storage = endpoint
    batch = [MENTION, {"id": "x", "followers": -3}]
    response = httpx.post(url, json=batch, headers=bearer())
    assert response.status_code == 422
    errors = response.json()["errors"]
    assert any(e.startswith("mentions[1]: text:") for e in errors), errors
    assert any("followers" in e for e in errors), errors
    assert storage.mentions() == []


def test_bodies_that_cannot_be_taken_get_a_precise_status(endpoint: tuple[str, Storage]) -> None:
    url, storage = endpoint
    huge = {**MENTION, "text": "Acme " + "x" * 5000}
    assert httpx.post(url, json=huge, headers=bearer()).status_code == 413
    assert httpx.post(url, content=b"{not json", headers=bearer()).status_code == 415
    not_json = httpx.post(
        url, content=b"{not json", headers={**bearer(), "Content-Type": "application/json"}
    )
    assert not_json.status_code == 400
    assert "not JSON" in not_json.json()["error"]
    wrong_path = httpx.post(url.replace("/mentions", "/other"), json=MENTION, headers=bearer())
    assert wrong_path.status_code == 404
    assert storage.mentions() == []


def test_an_unavailable_database_asks_the_sender_to_retry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_WEBHOOK_SECRET", SECRET)
    down = "postgresql+psycopg://brandmon@127.0.0.1:1/none?connect_timeout=2"
    config = parse_config(CONFIG.format(db=down, port=free_port()), "test.toml")
    pipeline = Pipeline(config, Storage(down))
    server = WebhookServer(config.sources[0], lambda ms: pipeline.process(ms)[0])  # type: ignore[arg-type]
    server.start()
    try:
        host, port = server.address
        response = httpx.post(f"http://{host}:{port}/mentions", json=MENTION, headers=bearer())
    finally:
        server.stop()
    assert response.status_code == 503
    assert response.headers["Retry-After"] == "30"


def test_a_missing_secret_is_named_and_not_served(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_WEBHOOK_SECRET", raising=False)
    config = parse_config(CONFIG.format(db="sqlite://", port=free_port()), "test.toml")
    with pytest.raises(ValueError, match="TEST_WEBHOOK_SECRET"):
        WebhookServer(config.sources[0], lambda ms: None)  # type: ignore[arg-type,return-value]


def test_the_daemon_serves_the_endpoint_until_sigterm(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "brandmon.db"
    config = tmp_path / "brandmon.toml"
    config.write_text(CONFIG.format(db=f"sqlite:///{db}", port=port))
    script = Path(sys.executable).parent / "brandmon"
    env = {**os.environ, "TEST_WEBHOOK_SECRET": SECRET}
    process = subprocess.Popen(
        [script, "run", "--config", str(config)], stderr=subprocess.PIPE, text=True, env=env
    )
    try:
        url = f"http://127.0.0.1:{port}/mentions"
        deadline = time.monotonic() + 20
        while True:
            try:
                response = httpx.post(url, json=MENTION, headers=bearer())
                break
            except httpx.ConnectError:
                assert time.monotonic() < deadline, "the endpoint never opened"
                time.sleep(0.2)
        assert response.json()["stored"] == 1
    finally:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=30)
    assert process.returncode == 0, stderr
    assert "push ok source=zapier received=1 stored=1" in stderr
    assert SECRET not in stderr
    storage = Storage(f"sqlite:///{db}")
    assert [m.external_id for m in storage.mentions()] == ["ig-1"]
    assert storage.source_state("zapier").last_success is not None  # health shows the push
    storage.close()
