"""The web console: login, CSRF, each page, and what its buttons store; then the demo's data in
a real browser (Debian's headless chromium, driven through the DevTools protocol)."""

from __future__ import annotations

import base64
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy
import pytest
from PIL import Image

from alerts.outbox import OutboxSender
from monitor.config import Config, ConfigError, ConsoleConfig, load_config, parse_config
from monitor.console import ConsoleServer, Pages
from monitor.console.sessions import COOKIE
from monitor.demo import BRAND, demo_config, run_demo
from monitor.model import Incident, IncidentAck, MentionRow, utcnow
from monitor.scheduler import Daemon
from monitor.storage import Storage

TOKEN = "console-test-token-7f3a"
CONFIG = """
[storage]
url = "sqlite:///{db}"

[[brands]]
name = "Acme"
keywords = ["acme"]

[[brands]]
name = "Globex"
keywords = ["globex"]

[detection]
warmup = "1h"
history = "1h"

[console]
bind = "127.0.0.1"
port = {port}
"""
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCREENSHOT_ENV = "BRANDMON_CONSOLE_SCREENSHOT"
"""Set to a path (docs/console.png) to keep the browser test's screenshot there."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def row(n: int, **fields: Any) -> MentionRow:
    at = utcnow() - timedelta(minutes=n)
    mention: MentionRow = {
        "brand": "Acme",
        "source": "x-main",
        "source_type": "x",
        "external_id": str(n),
        "url": f"https://x.example/status/{n}",
        "canonical_url": f"https://x.example/status/{n}",
        "author": f"user{n}",
        "author_followers": 1200,
        "likes": 4,
        "reposts": 1,
        "replies": None,
        "views": None,
        "text": f"Acme order {n} is late, still no refund",
        "language": "en",
        "published_at": at,
        "fetched_at": at,
        "sentiment_compound": -0.6,
        "sentiment_label": "negative",
        "reach_score": 20.0 + n,
        "category": "complaint",
        "priority": "P2",
    }
    return {**mention, **fields}


ROWS = [
    row(1, category="crisis_risk", priority="P1", text="Acme food made my kid sick, disgusting"),
    row(2),
    row(3, source="reddit-main", source_type="reddit", language="ms", text="Acme lambat lagi"),
    row(4, category="praise", priority="P4", sentiment_label="positive", text="Acme <b>rocks</b>"),
    row(5, brand="Globex", text="Globex charged me twice", author="payer"),
    row(6, priority=None, category=None, text="Acme untriaged post"),
    row(7, priority="P1", text="Acme charged my card three times"),
]


@pytest.fixture
def console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, db_url: str
) -> Iterator[tuple[str, Storage]]:
    """A console on a small store (a few mentions, one open incident acknowledged from Slack),
    on each backend, at its base URL."""
    monkeypatch.setenv("BRANDMON_CONSOLE_TOKEN", TOKEN)
    config = parse_config(CONFIG.format(db=tmp_path / "c.db", port=free_port()), "c.toml")
    storage = Storage(db_url)
    storage.create_schema()
    stored = storage.add_mentions([dict(r) for r in ROWS])
    ids = {r["external_id"]: r["id"] for r in stored}
    started = utcnow() - timedelta(minutes=30)
    with storage.session() as session:
        incident = Incident(
            brand="Acme",
            started_at=started,
            level="warning",
            peak_level="warning",
            peak_at=started + timedelta(minutes=10),
            peak_score=7.1,
            history=json.dumps(
                [
                    [started.isoformat(), "watch"],
                    [(started + timedelta(minutes=5)).isoformat(), "warning"],
                ]
            ),
            mention_ids=json.dumps([ids["1"], ids["2"]]),
        )
        session.add(incident)
        session.commit()
        session.add(
            IncidentAck(incident_id=incident.id, acknowledged_by="maya", acknowledged_at=started)
        )
        session.commit()
    assert config.console is not None
    server = ConsoleServer(config.console, Pages(config, storage))
    server.start()
    try:
        yield "http://{}:{}".format(*server.address), storage
    finally:
        server.stop()
        storage.close()


def csrf_of(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found, "the page has a form with a CSRF token"
    return found[1]


def logged_in(base: str, name: str = "aisha") -> tuple[httpx.Client, str]:
    """A client logged in as ``name``, and its session's CSRF token."""
    client = httpx.Client(base_url=base)
    form = client.get("/login")
    answer = client.post("/login", data={"csrf": csrf_of(form.text), "name": name, "token": TOKEN})
    assert answer.status_code == 303 and answer.headers["location"] == "/incidents"
    return client, csrf_of(client.get("/queue").text)


def mention_id(storage: Storage, external_id: str) -> int:
    found = [m.id for m in storage.find_mentions(limit=100) if m.external_id == external_id]
    assert found and found[0] is not None
    return found[0]


def test_pages_need_a_login(console: tuple[str, Storage]) -> None:
    base, storage = console
    client = httpx.Client(base_url=base)
    for path in ("/", "/incidents", "/queue", "/mentions", "/incidents/1", "/label/1"):
        answer = client.get(path)
        assert answer.status_code == 303 and answer.headers["location"] == "/login", path
    answer = client.post(f"/queue/{mention_id(storage, '2')}/done", data={"csrf": "x"})
    assert answer.status_code == 403
    assert storage.mention_states([mention_id(storage, "2")]) == {}


def test_login_takes_the_token_from_the_environment(console: tuple[str, Storage]) -> None:
    base, _ = console
    client = httpx.Client(base_url=base)
    form = client.get("/login")
    before = form.cookies[COOKIE]
    wrong = client.post("/login", data={"csrf": csrf_of(form.text), "name": "x", "token": "nope"})
    assert wrong.status_code == 401 and "wrong token" in wrong.text
    assert client.get("/queue").status_code == 303  # still not logged in
    right = client.post("/login", data={"csrf": csrf_of(form.text), "name": "x", "token": TOKEN})
    assert right.status_code == 303
    cookie = right.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert client.cookies[COOKIE] != before  # a new session id once logged in
    assert client.get("/queue").status_code == 200
    # the session id from before the login is worth nothing
    stale = httpx.Client(base_url=base, cookies={COOKIE: before})
    assert stale.get("/queue").status_code == 303


def test_every_form_needs_its_csrf_token(console: tuple[str, Storage]) -> None:
    base, storage = console
    fresh = httpx.Client(base_url=base)
    fresh.get("/login")
    refused = fresh.post("/login", data={"name": "x", "token": TOKEN})  # no token in the form
    assert refused.status_code == 403 and fresh.get("/queue").status_code == 303
    client, csrf = logged_in(base)
    target = mention_id(storage, "2")
    for path, form in (
        (f"/queue/{target}/done", {}),
        (f"/queue/{target}/assign", {}),
        (f"/label/{target}", {"sentiment": "positive"}),
        ("/logout", {}),
    ):
        for bad in ({}, {"csrf": "forged"}, {"csrf": csrf[:-1]}):
            assert client.post(path, data={**form, **bad}).status_code == 403, (path, bad)
    assert storage.mention_states([target]) == {}
    assert storage.mention_label(target) is None
    assert client.get("/queue").status_code == 200  # still logged in


def test_the_incidents_page(console: tuple[str, Storage]) -> None:
    base, storage = console
    client, _ = logged_in(base)
    listing = client.get("/incidents").text
    open_part = listing.split("<h2>Past</h2>")[0]
    assert 'href="/incidents/1"' in open_part and "warning" in open_part
    page = client.get("/incidents/1")
    assert page.status_code == 200
    text = page.text
    assert "by maya" in text  # who acknowledged, from Slack
    history = re.findall(r'<li><span class="(\w+)">', text)
    assert history == ["watch", "warning"]
    chart = re.search(r'id="chart"[^>]*src="data:image/png;base64,([^"]+)"', text)
    assert chart and base64.b64decode(chart[1])[:8] == b"\x89PNG\r\n\x1a\n"
    first = re.search(r'<p id="first">([^<]*)', text)
    assert first and "user2" in first[1]  # the earlier of the incident's two mentions
    assert "made my kid sick" in text and 'href="https://x.example/status/1"' in text
    assert client.get("/incidents/99").status_code == 404


def test_the_queue_by_priority_and_category_with_filters(console: tuple[str, Storage]) -> None:
    base, storage = console
    client, _ = logged_in(base)
    text = client.get("/queue").text
    order = re.findall(r'<h2 class="priority (P\d)">', text)
    assert order == ["P1", "P2", "P4"]
    p1 = text.split('class="priority P2"')[0]
    # a priority's categories come the most urgent first, whatever their names' order
    assert re.findall(r"<h3>([^<]+)</h3>", p1) == ["crisis risk", "complaint"]
    assert text.index("made my kid sick") < text.index("order 2 is late") < text.index("rocks")
    assert "untriaged" not in text  # only triaged mentions wait in the queue
    assert "Acme &lt;b&gt;rocks&lt;/b&gt;" in text and "<b>rocks</b>" not in text
    assert 'href="https://x.example/status/2"' in text and "reply where they wrote" in text
    globex = client.get("/queue", params={"brand": "Globex"}).text
    assert "charged me twice" in globex and "order 2" not in globex
    reddit = client.get("/queue", params={"source": "reddit-main"}).text
    assert "lambat" in reddit and "order 2" not in reddit
    malay = client.get("/queue", params={"language": "ms"}).text
    assert "lambat" in malay and "kid sick" not in malay


def test_done_and_assign_to_me_are_stored(console: tuple[str, Storage]) -> None:
    base, storage = console
    client, csrf = logged_in(base, "aisha")
    target = mention_id(storage, "2")
    back = "/queue?brand=Acme"
    answer = client.post(f"/queue/{target}/assign", data={"csrf": csrf, "back": back})
    assert answer.status_code == 303 and answer.headers["location"] == back
    state = storage.mention_states([target])[target]
    assert state.assigned_to == "aisha" and state.done_at is None
    assert "assigned to aisha" in client.get("/queue").text
    client.post(f"/queue/{target}/done", data={"csrf": csrf, "back": "//evil.example/"})
    state = storage.mention_states([target])[target]
    assert state.done_by == "aisha" and state.done_at is not None
    assert state.assigned_to == "aisha"  # kept
    assert "order 2 is late" not in client.get("/queue").text
    assert client.post("/queue/999999/done", data={"csrf": csrf}).status_code == 404


def test_the_mentions_search_says_why(console: tuple[str, Storage]) -> None:
    base, _ = console
    client, _ = logged_in(base)
    everything = client.get("/mentions").text
    assert everything.count('class="why"') == len(ROWS)
    found = client.get("/mentions", params={"q": "NO REFUND"}).text
    assert found.count('class="why"') == 1 and "order 2 is late" in found
    # the rules that fired, the language and the reach's parts
    assert re.search(r"<dt>rules</dt><dd>[^<]*refund", found)
    assert "<dt>language</dt><dd>en" in found
    assert "followers 1,200, likes 4, reposts 1, replies —, views —" in found
    by_author = client.get("/mentions", params={"author": "PAY"}).text
    assert by_author.count('class="why"') == 1 and "charged me twice" in by_author
    by_source = client.get("/mentions", params={"source": "reddit-main"}).text
    assert by_source.count('class="why"') == 1
    today = utcnow().date()
    dated = {"since": str(today - timedelta(days=1)), "until": str(today)}
    assert client.get("/mentions", params=dated).text.count('class="why"') == len(ROWS)
    future = {"since": str(today + timedelta(days=2))}
    assert client.get("/mentions", params=future).text.count('class="why"') == 0
    bad = client.get("/mentions", params={"since": "yesterday"}).text
    assert "expected a date" in bad


def test_a_label_is_stored_for_training(console: tuple[str, Storage]) -> None:
    base, storage = console
    client, csrf = logged_in(base, "aisha")
    target = mention_id(storage, "4")
    page = client.get(f"/label/{target}").text
    assert "Not labelled yet" in page
    saved = client.post(
        f"/label/{target}", data={"csrf": csrf, "sentiment": "negative", "category": "complaint"}
    )
    assert saved.status_code == 200 and 'id="saved"' in saved.text
    label = storage.mention_label(target)
    assert label is not None
    assert (label.sentiment, label.category, label.labelled_by) == (
        "negative",
        "complaint",
        "aisha",
    )
    trained_on = [t for t in storage.labelled_mentions() if t.mention_id == target]
    assert trained_on and trained_on[0].sentiment == "negative"
    wrong = client.post(f"/label/{target}", data={"csrf": csrf, "sentiment": "furious"})
    assert wrong.status_code == 422 and "unknown sentiment" in wrong.text
    assert client.get("/label/999999").status_code == 404


def test_secrets_are_never_logged(
    console: tuple[str, Storage], caplog: pytest.LogCaptureFixture
) -> None:
    base, _ = console
    with caplog.at_level(logging.DEBUG):
        client = httpx.Client(base_url=base)
        form = client.get("/login")
        client.post("/login", data={"csrf": csrf_of(form.text), "name": "x", "token": "guess"})
        client, csrf = logged_in(base)
        client.post("/logout", data={"csrf": csrf})
    server_side = [r for r in caplog.records if not r.name.startswith(("httpx", "httpcore"))]
    logged = "\n".join(record.getMessage() for record in server_side)
    assert "console login user=aisha" in logged and "wrong token" in logged
    for secret in (TOKEN, "guess", csrf, *client.cookies.values()):
        assert secret not in logged
    assert client.get("/queue").status_code == 303  # logged out


def test_the_console_section(tmp_path: Path) -> None:
    text = CONFIG.format(db=tmp_path / "c.db", port=8790)
    console = parse_config(text, "c.toml").console
    assert console == ConsoleConfig(bind="127.0.0.1", port=8790)
    assert console.token_env == "BRANDMON_CONSOLE_TOKEN"
    assert load_config(None).console is None  # off unless configured
    with pytest.raises(ConfigError) as caught:
        parse_config(text + 'token = "hunter2"\n', "c.toml")
    assert "secrets are never read from the config file" in str(caught.value)


def test_brandmon_run_serves_the_console(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    port = free_port()
    config = parse_config(CONFIG.format(db=tmp_path / "c.db", port=port), "c.toml")
    storage = Storage(config.storage.url)
    storage.create_schema()
    monkeypatch.delenv("BRANDMON_CONSOLE_TOKEN", raising=False)
    daemon = Daemon(config, storage)
    with caplog.at_level(logging.ERROR):
        daemon._start_push()  # noqa: SLF001 - as run_forever and reload start the endpoints
    assert "BRANDMON_CONSOLE_TOKEN" in caplog.text  # no token: not served, and said so
    assert not any(isinstance(e, ConsoleServer) for e in daemon._endpoints)  # noqa: SLF001
    monkeypatch.setenv("BRANDMON_CONSOLE_TOKEN", TOKEN)
    daemon._start_push()  # noqa: SLF001
    try:
        answer = httpx.get(f"http://127.0.0.1:{port}/login")
        assert answer.status_code == 200 and 'name="token"' in answer.text
    finally:
        daemon._stop_push()  # noqa: SLF001
        storage.close()


class Browser:
    """Headless chromium driven through the DevTools protocol over a pipe (no driver, no
    websocket client: ``--remote-debugging-pipe`` reads commands on fd 3 and answers on fd 4,
    as JSON messages ended by a NUL byte)."""

    def __init__(self, executable: str, profile: str) -> None:
        to_browser, self._out = os.pipe()
        self._in, from_browser = os.pipe()

        def pipes() -> None:  # in the child: the pipe ends on fds 3 and 4, kept across exec
            read, write = os.dup(to_browser), os.dup(from_browser)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self._process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
            + ["--remote-debugging-pipe", f"--user-data-dir={profile}", "about:blank"],
            preexec_fn=pipes,
            close_fds=False,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next = 0
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        self._session = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.page(
            "Emulation.setDeviceMetricsOverride",
            width=1200,
            height=1100,
            deviceScaleFactor=1,
            mobile=False,
        )

    def call(self, method: str, _session: str | None = None, **params: Any) -> dict[str, Any]:
        self._next += 1
        message: dict[str, Any] = {"id": self._next, "method": method, "params": params}
        if _session:
            message["sessionId"] = _session
        os.write(self._out, json.dumps(message).encode() + b"\0")
        while True:  # events arrive in between: skip them
            while b"\0" not in self._buffer:
                chunk = os.read(self._in, 1 << 16)
                assert chunk, "chromium closed the DevTools pipe"
                self._buffer += chunk
            raw, _, self._buffer = self._buffer.partition(b"\0")
            answer = json.loads(raw)
            if answer.get("id") == self._next:
                assert "error" not in answer, answer
                return answer["result"]

    def page(self, method: str, **params: Any) -> dict[str, Any]:
        return self.call(method, self._session, **params)

    def js(self, expression: str) -> Any:
        return self.page("Runtime.evaluate", expression=expression, returnByValue=True)[
            "result"
        ].get("value")

    def wait_for(self, path: str) -> None:
        """Wait until the page at ``path`` has loaded (a bound, not a timing assertion)."""
        deadline = time.monotonic() + 60
        while not self.js(
            f"location.pathname === {json.dumps(path)} && document.readyState === 'complete'"
        ):
            assert time.monotonic() < deadline, f"{path} did not load"
            time.sleep(0.1)

    def go(self, url: str, path: str) -> None:
        self.page("Page.navigate", url=url)
        self.wait_for(path)

    def submit(self, button: str, path: str, **fields: str) -> None:
        """Fill in the current page's ``fields`` (by id), press ``button``, and wait for
        ``path``."""
        for field, value in fields.items():
            self.js(f"document.getElementById({json.dumps(field)}).value = {json.dumps(value)}")
        self.js("document.title = 'submitting'")
        self.js(f"document.getElementById({json.dumps(button)}).click()")
        deadline = time.monotonic() + 60
        while self.js("document.title") == "submitting":  # the next page replaces this one
            assert time.monotonic() < deadline, f"{button} did not submit"
            time.sleep(0.1)
        self.wait_for(path)

    def screenshot(self) -> bytes:
        return base64.b64decode(self.page("Page.captureScreenshot", format="png")["data"])

    def close(self) -> None:
        self._process.terminate()
        self._process.wait(timeout=30)
        os.close(self._out)
        os.close(self._in)


@pytest.fixture
def demo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Storage]]:
    """The demo's crisis replayed into a database, with a console on it."""
    monkeypatch.setenv("BRANDMON_CONSOLE_TOKEN", TOKEN)
    config: Config = demo_config(load_config(None), tmp_path / "demo.db")
    storage = Storage(config.storage.url)
    storage.create_schema()
    run_demo(config, storage, OutboxSender(storage, {}), lambda _: None)
    console = ConsoleConfig(port=free_port())
    server = ConsoleServer(console, Pages(config, storage))
    server.start()
    try:
        yield "http://{}:{}".format(*server.address), storage
    finally:
        server.stop()
        storage.close()


@pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")
def test_the_console_in_a_browser(demo: tuple[str, Storage], tmp_path: Path) -> None:
    base, storage = demo
    assert CHROMIUM is not None
    browser = Browser(CHROMIUM, tempfile.mkdtemp(dir=tmp_path))
    try:
        browser.go(f"{base}/incidents", "/login")  # not logged in: the login page
        browser.submit("login", "/incidents", name="aisha", token=TOKEN)
        assert BRAND in browser.js("document.querySelector('main').innerText")
        browser.js("document.querySelector('table.incidents a').click()")
        browser.wait_for("/incidents/1")
        heading = browser.js("document.getElementById('incident').innerText")
        assert f"{BRAND}, crisis" in heading
        assert browser.js("document.getElementById('chart').naturalWidth") > 500  # decoded
        shot = browser.screenshot()
        browser.js("document.querySelector('nav a[href=\"/queue\"]').click()")
        browser.wait_for("/queue")
        assert browser.js("document.querySelector('h2.priority').innerText") == "P1"
        first = browser.js("document.querySelector('ul.mentions li').id")
        target = int(first.removeprefix("mention-"))
        browser.js(f"document.querySelector('#{first} a.label-link').click()")
        browser.wait_for(f"/label/{target}")
        browser.js("document.getElementById('sentiment-neutral').checked = true")
        browser.submit("save", f"/label/{target}", category="other")
        assert "Saved: neutral, other" in browser.js("document.getElementById('saved').innerText")
    finally:
        browser.close()
    label = storage.mention_label(target)
    assert label is not None
    assert (label.sentiment, label.category, label.labelled_by) == ("neutral", "other", "aisha")
    # the screenshot shows the incident page: its crisis heading and the chart's lines
    out = tmp_path / "console.png"
    out.write_bytes(shot)
    image = numpy.asarray(Image.open(out).convert("RGB"), dtype=int)

    def pixels_like(colour: tuple[int, int, int]) -> int:
        return int((abs(image - numpy.array(colour)) <= 12).all(axis=2).sum())

    assert pixels_like((0xF6, 0xC9, 0xCF)) > 200  # the crisis level's background
    assert pixels_like((0xD7, 0x26, 0x3D)) > 200  # the chart's negative line
    assert pixels_like((0x1B, 0x49, 0x65)) > 2000  # the console's header bar
    if keep := os.environ.get(SCREENSHOT_ENV):
        Image.open(out).convert("RGB").quantize(64).save(keep, optimize=True)


def test_pruned_mentions_leave_no_queue_state(storage: Storage) -> None:
    stored = storage.add_mentions([row(1), row(2)])
    recent, old = (r["id"] for r in stored)
    storage.set_mention_state(recent, assigned_to="aisha")
    storage.set_mention_state(old, done_by="aisha")
    storage.prune(utcnow() - timedelta(seconds=90))  # row 2 is two minutes old
    assert set(storage.mention_states([recent, old])) == {recent}
    with pytest.raises(ValueError, match="longer than"):
        storage.set_mention_state(recent, assigned_to="x" * 101)
