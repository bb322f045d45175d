"""The Slack sink against a loopback fake of the Slack Web API (real slack-sdk client)."""

from __future__ import annotations

import json
import re
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from alerts.base import Alert, PermanentSinkError, SinkError
from alerts.base import test_alert as marked_test_alert
from alerts.slack import SlackSink
from alerts.slack_actions import MUTE, ActionServer, acknowledgement, record, signature
from alerts.slack_actions import PATH as ACTIONS_PATH
from monitor.alert import MentionPayload, PagePayload, UndeliverablePayload
from monitor.config import parse_config
from monitor.storage import Storage

TOKEN = "xoxb-test-token-value"

CONFIG = """
[storage]
url = "sqlite:///{db}"

[[brands]]
name = "Acme"
keywords = ["acme"]

[alerts]
sinks = ["slack"]

[alerts.slack]
token_env = "TEST_SLACK_TOKEN"
channel = "{channel}"
channels = {{ crisis = "#war-room" }}
crisis_mention = "<!subteam^S0PR>"
base_url = "{base}"

[[routes]]
category = "crisis_risk"
channel = "#safety-team"
team = "Food safety"
min_priority = "P2"
"""


PNG = b"\x89PNG\r\n\x1a\n a chart"


class FakeSlack:
    """Records every Web API call and answers as Slack's Web API reference says it does.

    Channels are known by ID; only ``chat.postMessage`` also takes a name.  Posting needs the
    bot in the channel.  Block Kit limits are enforced (``invalid_blocks``), so is the text
    length (``msg_too_long``), and ``conversations.list`` pages with a cursor.
    """

    CHANNELS = [
        {"id": "C0PRALERT", "name": "pr-alerts", "is_member": True},
        {"id": "C0WARROOM", "name": "war-room", "is_member": True},
        {"id": "C0GENERAL", "name": "general", "is_member": False},
        {"id": "C0SAFETYT", "name": "safety-team", "is_member": True},
        {"id": "G0PRIVATE", "name": "exec-private", "is_member": True},
    ]
    PAGE = 2  # channels per conversations.list page, whatever the limit asked (Slack may do so)

    def __init__(self, server: HTTPServer) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.fail: list[Response] = []  # responses to give before behaving again
        self.uploaded: list[bytes] = []  # the files' contents, as uploaded
        self.server = server
        server.expect_request(re.compile("/.*")).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        method = request.path.strip("/")
        if method == "upload":  # the upload URL files.getUploadURLExternal gave
            self.uploaded.append(request.get_data())
            return Response("OK - 1234", status=200)
        if request.is_json:
            body = request.get_json()
        else:
            body = {**request.args.to_dict(), **request.form.to_dict()}
        self.calls.append((method, body))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.reply({"ok": False, "error": "invalid_auth"})
        if self.fail:
            return self.fail.pop(0)
        if method == "conversations.list":
            start = int(body.get("cursor") or 0)
            page = self.CHANNELS[start : start + self.PAGE]
            following = str(start + self.PAGE) if start + self.PAGE < len(self.CHANNELS) else ""
            return self.reply(
                {"ok": True, "channels": page, "response_metadata": {"next_cursor": following}}
            )
        if method == "files.getUploadURLExternal":
            url = self.server.url_for("/upload")
            return self.reply({"ok": True, "upload_url": url, "file_id": "F1"})
        if method == "files.completeUploadExternal":
            channel = self.channel(body.get("channel_id"), names=False)
            if channel is None:
                return self.reply({"ok": False, "error": "channel_not_found"})
            return self.reply({"ok": True, "files": [{"id": "F1"}]})
        channel = self.channel(body.get("channel"), names=method == "chat.postMessage")
        if channel is None:
            return self.reply({"ok": False, "error": "channel_not_found"})
        if method == "chat.postMessage":
            return self.post(channel, body)
        found = self.messages.get(channel["id"], [])
        if method in ("conversations.history", "conversations.replies"):
            if method == "conversations.replies":
                # like Slack: the thread's parent first, then its replies
                found = [m for m in found if body["ts"] in (m["ts"], m.get("thread_ts"))]
            return self.reply({"ok": True, "messages": list(reversed(found))})
        ts = body.get("ts") or body.get("message_ts")
        if not any(m["ts"] == ts for m in found):
            return self.reply({"ok": False, "error": "message_not_found"})
        if method == "chat.update":
            problem = self.invalid(body)
            if problem:
                return self.reply({"ok": False, "error": problem})
            message = next(m for m in found if m["ts"] == ts)
            message["blocks"] = body.get("blocks")
            return self.reply({"ok": True, "channel": channel["id"], "ts": ts})
        if method == "chat.getPermalink":
            link = f"https://acme.slack.com/archives/{channel['id']}/p{ts.replace('.', '')}"
            return self.reply({"ok": True, "channel": channel["id"], "permalink": link})
        return self.reply({"ok": False, "error": "unknown_method"})

    def channel(self, given: str | None, *, names: bool) -> dict[str, Any] | None:
        for channel in self.CHANNELS:
            if given == channel["id"] or (
                names and given in (channel["name"], "#" + channel["name"])
            ):
                return channel
        return None

    def post(self, channel: dict[str, Any], body: dict[str, Any]) -> Response:
        if not channel["is_member"]:
            return self.reply({"ok": False, "error": "not_in_channel"})
        problem = self.invalid(body)
        if problem:
            return self.reply({"ok": False, "error": problem})
        ts = f"1700000000.{len(self.calls):06d}"
        message = {
            "ts": ts,
            "text": body["text"],
            "blocks": body.get("blocks"),
            "metadata": body.get("metadata"),
        }
        if body.get("thread_ts"):
            message["thread_ts"] = body["thread_ts"]
            message["broadcast"] = bool(body.get("reply_broadcast"))
        self.messages.setdefault(channel["id"], []).append(message)
        return self.reply({"ok": True, "channel": channel["id"], "ts": ts})

    @staticmethod
    def invalid(body: dict[str, Any]) -> str | None:
        """Slack's answer to a message outside its documented limits, if it is."""
        if len(body.get("text") or "") > 40_000:
            return "msg_too_long"
        blocks = body.get("blocks") or []
        if isinstance(blocks, str):
            blocks = json.loads(blocks)
        if len(blocks) > 50:
            return "invalid_blocks"
        for block in blocks:
            text = (block.get("text") or {}).get("text", "")
            if block["type"] == "header" and len(text) > 150:
                return "invalid_blocks"
            if block["type"] == "section" and not 1 <= len(text) <= 3000:
                return "invalid_blocks"
            if block["type"] == "context" and not 1 <= len(block["elements"]) <= 10:
                return "invalid_blocks"
        return None

    @staticmethod
    def reply(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
        return Response(
            json.dumps(body), status=status, content_type="application/json", headers=headers
        )

    def posts(self) -> list[dict[str, Any]]:
        return [body for method, body in self.calls if method == "chat.postMessage"]

    def called(self, name: str) -> list[dict[str, Any]]:
        return [body for method, body in self.calls if method == name]

    def thread(self, channel: str) -> list[dict[str, Any]]:
        """The channel's messages: its first head, then the replies in that head's thread."""
        messages = self.messages.get(channel, [])
        head = messages[0]["ts"]
        return [m for m in messages if head in (m["ts"], m.get("thread_ts"))]


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    return FakeSlack(httpserver)


@contextmanager
def make_sink(
    slack: FakeSlack,
    folder: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    channel: str = "#pr-alerts",
    slack_extra: str = "",
) -> Iterator[SlackSink]:
    monkeypatch.setenv("TEST_SLACK_TOKEN", TOKEN)
    base = slack.server.url_for("/")
    text = CONFIG.format(db=folder / f"{channel.strip('#')}.db", base=base, channel=channel)
    text = text.replace(f'base_url = "{base}"\n', f'base_url = "{base}"\n{slack_extra}')
    config = parse_config(text, "brandmon.toml")
    storage = Storage(config.storage.url)
    storage.create_schema()
    try:
        yield SlackSink(config, storage)
    finally:
        storage.close()


@pytest.fixture
def sink(slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackSink]:
    with make_sink(slack, tmp_path, monkeypatch) as made:
        yield made


def page(level: str, event: str, at: str, *, kind: str = "page") -> Alert:
    payload = {
        "brand": "Acme",
        "incident_id": 7,
        "event": event,
        "level": level,
        "at": at,
        "started_at": "2026-11-24T08:30:00+00:00",
        "peak_level": level,
        "peak_at": at,
        "score": 12.5,
        "negative": 42,
        "expected": 3.2,
        "why": "42 negative mentions in 15 min; usually 3 at this time of day (rare)",
        "window_minutes": 15,
        "previous_window": 12,
        "thresholds": {"watch": 5.0, "warning": 7.0, "crisis": 10.0},
        "top_mentions": [
            {
                "id": 1,
                "source": "youtube",
                "author": "FoodieTravels",
                "followers": 182000,
                "reach": 61.5,
                "text": "Acme kitchen video: <rats> & dirty trays",
                "url": "https://youtube.example/watch?v=1",
                "category": "crisis_risk",
                "priority": "P1",
                "published_at": at,
            },
            {
                "id": 2,
                "source": "x",
                "author": "mia",
                "followers": 300,
                "reach": 9.0,
                "text": "still waiting for my Acme refund",
                "url": "https://x.example/2",
                "category": "complaint",
                "priority": "P3",
                "published_at": at,
            },
        ],
    }
    return Alert(
        key=f"Acme:7:{at}:{kind}:{level}",
        brand="Acme",
        kind=kind,
        payload=PagePayload.from_json(payload),
    )


def changed(alert: Alert, **fields: Any) -> Alert:
    """``alert`` with some fields of its (page) payload changed."""
    return replace(alert, payload=replace(alert.read(PagePayload), **fields))


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


PR, WAR, SAFETY = "C0PRALERT", "C0WARROOM", "C0SAFETYT"


def test_an_incident_is_one_thread_per_channel_whose_head_says_where_it_stands(
    sink: SlackSink, slack: FakeSlack
) -> None:
    sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
    sink.send(page("warning", "escalated", "2026-11-24T08:50:00+00:00"))
    head, first, second = slack.thread(PR)
    # the head is the live summary; each page's evidence is a reply that stays
    assert "thread_ts" not in head and first["thread_ts"] == second["thread_ts"] == head["ts"]
    assert "WATCH — Acme" in dump(first["blocks"])
    assert "WARNING — Acme" in dump(second["blocks"])
    evidence = dump(first["blocks"])
    assert "42 negative mentions in 15 min; usually 3 at this time of day" in evidence
    assert "×3.5 on the previous 15 min" in evidence
    # top mentions linked, user text escaped for mrkdwn
    assert "<https://youtube.example/watch?v=1|Acme kitchen video: &lt;rats&gt; &amp; dirty" in (
        evidence
    )
    assert "FoodieTravels (reach 62, youtube)" in evidence
    assert "crisis risk ×1" in evidence and "complaint ×1" in evidence
    assert "WARNING — Acme" in dump(head["blocks"])  # the head was updated
    # when the incident opened, the safety team got the crisis-risk mention (P1 within P2), not
    # the P3 complaint; the escalation did not repeat it
    [routed] = slack.messages[SAFETY]
    assert "Food safety: 1 crisis risk mention(s)" in dump(routed["blocks"])
    assert "acme refund" not in dump(routed["blocks"]).lower()

    crisis_page = page("crisis", "escalated", "2026-11-24T09:00:00+00:00")
    assert sink.wants_chart(crisis_page) and not sink.wants_chart(
        page("warning", "resolved", "2026-11-24T12:00:00+00:00", kind="resolved")
    )
    sink.send(replace(crisis_page, chart=PNG))  # drawn before the sink, by the outbox's sender
    war_head, crisis = slack.thread(WAR)
    # the crisis is broadcast to its channel with the user group, in its own thread there
    assert crisis["broadcast"] and "<!subteam^S0PR> 42 negative mentions" in crisis["text"]
    # each head links to the incident's thread in the other channel
    assert f"archives/{WAR}/p" in dump(slack.thread(PR)[0]["blocks"])
    assert f"archives/{PR}/p" in dump(war_head["blocks"])
    [upload] = slack.called("files.completeUploadExternal")
    assert upload["channel_id"] == WAR  # the chart of the last 24 hours, in the crisis thread
    assert slack.uploaded == [PNG]

    resolved = page("warning", "resolved", "2026-11-24T12:00:00+00:00", kind="resolved")
    resolved = changed(resolved, peak_level="crisis")
    sink.send(resolved)
    for channel in (PR, WAR):
        thread = slack.thread(channel)
        assert "incident #7 is over" in dump(thread[-1]["blocks"])
        assert "RESOLVED (peak" in dump(thread[0]["blocks"])
    assert "CRISIS" in dump(slack.thread(PR)[0]["blocks"])  # the peak, in every head


def test_channel_names_are_resolved_to_ids_once_and_ids_are_used_as_given(
    sink: SlackSink, slack: FakeSlack
) -> None:
    sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
    sink.send(page("warning", "escalated", "2026-11-24T08:50:00+00:00"))
    # paged through every channel once (two per page), then only IDs went to Slack
    assert len(slack.called("conversations.list")) == 3
    used = {body.get("channel") for method, body in slack.calls if body.get("channel")}
    assert used <= {PR, SAFETY}
    # a normal post never reads the channel's history (rate-limited for some apps)
    assert slack.called("conversations.history") == []
    assert slack.called("conversations.replies") == []


def test_a_channel_the_bot_is_not_in_is_refused_with_a_hint_and_for_good(
    slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for channel, problem in (("#general", "not in Slack channel #general"), ("#nope", "#nope")):
        with make_sink(slack, tmp_path, monkeypatch, channel=channel) as other:
            with pytest.raises(PermanentSinkError, match=problem) as refused:
                other.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
            assert "/invite @" in str(refused.value)
    assert slack.posts() == []


def test_permanent_refusals_name_the_call_and_a_hint_transient_ones_retry(
    sink: SlackSink, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    slack.fail.append(
        FakeSlack.reply({"ok": False, "error": "ratelimited"}, 429, **{"Retry-After": "17"})
    )
    with pytest.raises(SinkError) as limited:
        sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
    assert limited.value.retry_after == 17 and not isinstance(limited.value, PermanentSinkError)
    slack.fail.append(FakeSlack.reply({"ok": False, "error": "internal_error"}, 500))
    with pytest.raises(SinkError, match="internal_error") as down:
        sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
    assert not isinstance(down.value, PermanentSinkError)
    monkeypatch.setenv("TEST_SLACK_TOKEN", "xoxb-wrong")
    sink._client = None
    with pytest.raises(PermanentSinkError) as wrong:
        sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
    said = str(wrong.value)
    assert re.search(r"Slack (chat\.postMessage|conversations\.list) .*refused: invalid_auth", said)
    assert "TEST_SLACK_TOKEN" in said
    assert "xoxb" not in said.replace("xoxb-…", "")
    monkeypatch.setenv("TEST_SLACK_TOKEN", TOKEN)
    sink._client = None
    sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))  # Slack is back
    assert [m["thread_ts"] for m in slack.thread(PR)[1:]] == [slack.thread(PR)[0]["ts"]]


def test_a_message_refused_for_its_blocks_goes_out_once_as_plain_text(
    sink: SlackSink, slack: FakeSlack
) -> None:
    handle = slack.handle

    def no_blocks(request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if request.path.endswith("chat.postMessage") and "WATCH" in json.dumps(body.get("blocks")):
            slack.calls.append(("chat.postMessage", body))
            return FakeSlack.reply({"ok": False, "error": "invalid_blocks"})
        return handle(request)

    slack.server.clear()
    slack.server.expect_request(re.compile("/.*")).respond_with_handler(no_blocks)
    sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
    evidence = slack.thread(PR)[1]
    assert evidence["blocks"] is None and "42 negative mentions in 15 min" in evidence["text"]


HOSTILE = [
    ("https://evil.example/a>|<!channel>", "free <!channel> & <@U123> <!here>"),
    ("javascript:alert(1)", "*bold* `code` <https://x.example|click>"),
    ("https://news.google.com/rss/articles/" + "CBMi" * 150 + "?oc=5", "ok " * 400),
    ("https://x.example/a b", "line\nbreaks\tand\x00nulls"),
]


@pytest.mark.parametrize("source", ["x", "reddit", "youtube", "rss", "bluesky", "mastodon"])
def test_hostile_texts_and_links_cannot_ping_anyone_and_fit_slacks_limits(
    sink: SlackSink, slack: FakeSlack, source: str
) -> None:
    alert = page("crisis", "opened", "2026-11-24T08:40:00+00:00")
    top = tuple(
        replace(
            alert.read(PagePayload).top_mentions[0],
            source=source,
            url=url,
            text=text,
            author="<!everyone> " + "a" * 200,
        )
        for url, text in HOSTILE * 3
    )
    alert = changed(alert, top_mentions=top, first_mentions=top[:4])
    sink.send(alert)  # the fake refuses anything over Slack's limits
    sent = dump([p.get("blocks") for p in slack.posts()]) + dump([p["text"] for p in slack.posts()])
    for live in ("<!channel>", "<!here>", "<!everyone>", "<@U123>", "|<!", "javascript:"):
        assert live not in sent
    assert "<https://news.google.com/rss/articles/" in sent  # a long but safe link is kept


def test_a_post_that_got_no_answer_is_looked_up_before_it_is_sent_again(
    sink: SlackSink, slack: FakeSlack
) -> None:
    handle = slack.handle
    dropped: list[str] = []

    def lose_first_answer(request: Request) -> Response:
        response = handle(request)  # Slack takes the message...
        if request.path.endswith("chat.postMessage") and not dropped:
            dropped.append("once")
            return Response("", status=502)  # ...and the answer is lost on the way
        return response

    slack.server.clear()
    slack.server.expect_request(re.compile("/.*")).respond_with_handler(lose_first_answer)
    alert = page("watch", "opened", "2026-11-24T08:40:00+00:00")
    with pytest.raises(SinkError):
        sink.send(alert)
    sink.send(alert)
    sink.send(alert)  # and a third time: known as posted, nothing looked up or sent
    assert len(slack.called("conversations.history")) == 1
    assert [m.get("thread_ts") is None for m in slack.messages[PR]] == [True, False]


def test_test_alerts_are_clearly_marked(sink: SlackSink, slack: FakeSlack) -> None:
    sink.send(marked_test_alert("Acme"))
    [post] = slack.posts()
    assert post["channel"] == PR and "[TEST]" in post["text"]


def test_slack_unreachable_is_a_transient_sink_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SLACK_TOKEN", TOKEN)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = CONFIG.format(
        db=tmp_path / "b.db", base=f"http://127.0.0.1:{port}/", channel="C0PRALERT"
    )
    config = parse_config(text, "brandmon.toml")
    storage = Storage(config.storage.url)
    storage.create_schema()
    with pytest.raises(SinkError, match="cannot reach Slack") as unreachable:
        SlackSink(config, storage).send(marked_test_alert("Acme"))
    assert not isinstance(unreachable.value, PermanentSinkError)
    storage.close()


def test_alerts_wait_in_the_outbox_while_slack_is_down_and_go_out_in_order(
    sink: SlackSink, slack: FakeSlack
) -> None:
    from datetime import timedelta

    from alerts.outbox import OutboxSender
    from monitor.model import utcnow
    from monitor.storage import enqueue

    alerts = [
        page("watch", "opened", "2026-11-24T08:40:00+00:00"),
        page("warning", "escalated", "2026-11-24T08:50:00+00:00"),
        page("warning", "resolved", "2026-11-24T11:00:00+00:00", kind="resolved"),
    ]
    with sink.storage.session() as session:
        for alert in alerts:
            enqueue(
                session,
                key=alert.key,
                brand="Acme",
                kind=alert.kind,
                payload=alert.payload,
                sinks=["slack"],
            )
        session.commit()
    sender = OutboxSender(sink.storage, [sink])
    down = FakeSlack.reply({"ok": False, "error": "internal_error"}, 503)
    slack.fail.extend([down] * 3)
    later = utcnow()
    for _ in range(3):  # three delivery rounds while Slack answers 503
        report = sender.deliver_due(later)
        assert report.sent == 0 and report.failed == 1  # the oldest fails, the rest wait
        later += timedelta(hours=1)
    assert slack.posts() == []
    report = sender.deliver_due(later)  # Slack is back
    assert report.sent == 3
    # in order, each once, in the incident's thread
    head, *replies = slack.thread(PR)
    keys = [m["metadata"]["event_payload"]["key"] for m in replies]
    assert keys == [f"{a.key}:slack" for a in alerts]
    assert {m["thread_ts"] for m in replies} == {head["ts"]}


def test_kill_9_during_a_delivery_neither_loses_nor_repeats_a_page(
    slack: FakeSlack, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import threading
    import time

    from sqlmodel import col, select

    from monitor.model import AlertOutbox
    from monitor.storage import enqueue

    db = tmp_path / "brandmon.db"
    config = tmp_path / "brandmon.toml"
    config.write_text(
        CONFIG.format(db=db, base=slack.server.url_for("/"), channel="#pr-alerts")
        + '\n[[sources]]\nname = "feed"\ntype = "rss"\nurl = "http://127.0.0.1:9/feed"\n'
    )
    storage = Storage(f"sqlite:///{db}")
    storage.create_schema()
    alerts = [page("watch", "opened", "2026-11-24T08:40:00+00:00")]
    alerts.append(page("warning", "escalated", "2026-11-24T08:50:00+00:00"))
    with storage.session() as session:
        for alert in alerts:
            enqueue(
                session,
                key=alert.key,
                brand="Acme",
                kind=alert.kind,
                payload=alert.payload,
                sinks=["slack"],
            )
        session.commit()

    posted, release = threading.Event(), threading.Event()
    handle = slack.handle

    def slow_first_post(request: Request) -> Response:
        response = handle(request)  # Slack has taken the message...
        if request.path.endswith("chat.postMessage") and not posted.is_set():
            posted.set()
            release.wait(timeout=30)  # ...but the daemon dies before it hears so
        return response

    slack.server.clear()
    slack.server.expect_request(re.compile("/.*")).respond_with_handler(slow_first_post)
    env = {**os.environ, "TEST_SLACK_TOKEN": TOKEN}
    script = Path(sys.executable).parent / "brandmon"
    daemon = subprocess.Popen(
        [script, "run", "--config", str(config)], env=env, stderr=subprocess.DEVNULL
    )
    try:
        assert posted.wait(timeout=30)
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
    finally:
        release.set()
    time.sleep(0.2)
    again = subprocess.run(
        [script, "run", "--once", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "alert already posted" in again.stderr
    keys = [m["metadata"]["event_payload"]["key"] for m in slack.thread(PR)[1:]]
    assert keys == [f"{a.key}:slack" for a in alerts]  # each once, in order
    with storage.session() as session:
        rows = session.exec(select(AlertOutbox).order_by(col(AlertOutbox.id))).all()
    statuses = [row.status for row in rows]
    storage.close()
    assert statuses == ["sent", "sent"]


def test_a_crisis_page_goes_out_even_when_its_chart_cannot_be_uploaded(
    sink: SlackSink, slack: FakeSlack
) -> None:
    handle = slack.handle

    def no_files(request: Request) -> Response:
        if request.path.strip("/").startswith("files."):
            return FakeSlack.reply({"ok": False, "error": "missing_scope"})
        return handle(request)

    slack.server.clear()
    slack.server.expect_request(re.compile("/.*")).respond_with_handler(no_files)
    sink.send(replace(page("crisis", "opened", "2026-11-24T09:00:00+00:00"), chart=PNG))
    assert [p["channel"] for p in slack.posts()] == [WAR, WAR, SAFETY]  # head, page, route


def test_another_sinks_undeliverable_alert_is_a_notice_where_its_page_would_be(
    sink: SlackSink, slack: FakeSlack
) -> None:
    notice = {
        "brand": "Acme",
        "sink": "email",
        "alert_id": 17,
        "alert_kind": "page",
        "level": "crisis",
        "incident_id": 7,
        "error": "SMTP 550 <mailbox unavailable>",
        "at": "2026-11-24T09:00:00+00:00",
    }
    sink.send(
        Alert("undeliverable:17:1", "Acme", "undeliverable", UndeliverablePayload.from_json(notice))
    )
    [post] = slack.posts()
    assert post["channel"] == WAR and post.get("thread_ts") is None
    text = dump(post["blocks"])
    assert "UNDELIVERABLE — Acme" in text and "brandmon outbox retry 17" in text
    assert "&lt;mailbox unavailable&gt;" in text


SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BUTTONS = 'interactivity = "127.0.0.1:8799"\nsigning_secret_env = "TEST_SLACK_SIGNING"\n'


def answers_at(slack: FakeSlack, path: str) -> list[dict[str, Any]]:
    """What brandmon posts to ``path`` on the fake Slack (a click's ``response_url``); the
    rest of the Web API is served as before."""
    answers: list[dict[str, Any]] = []
    handle = slack.handle

    def response_url(request: Request) -> Response:
        if request.path == path:
            answers.append(request.get_json())
            return Response("ok")
        return handle(request)

    slack.server.clear()
    slack.server.expect_request(re.compile("/.*")).respond_with_handler(response_url)
    return answers


def click(action: str, incident: int, response_url: str, blocks: list[Any]) -> bytes:
    payload = {
        "type": "block_actions",
        "user": {"id": "U0MIA", "username": "mia"},
        "channel": {"id": PR},
        "message": {"ts": "1700000000.000001", "blocks": blocks},
        "response_url": response_url,
        "actions": [{"action_id": action, "block_id": "brandmon_actions", "value": str(incident)}],
    }
    return urlencode({"payload": json.dumps(payload)}).encode()


def test_buttons_acknowledge_and_mute_an_incident_only_when_slack_signed_the_click(
    slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with make_sink(slack, tmp_path, monkeypatch, slack_extra=BUTTONS) as sink:
        sink.send(page("warning", "opened", "2026-11-24T08:40:00+00:00"))
        head = slack.thread(PR)[0]
        [actions] = [b for b in head["blocks"] if b["type"] == "actions"]
        assert [e["action_id"] for e in actions["elements"]] == ["brandmon_ack", "brandmon_mute"]
        redraws = answers_at(slack, "/hooks/1")  # the click's response_url, as Slack gives it
        server = ActionServer("127.0.0.1", 0, SECRET, sink.storage)
        server.start()
        url = "http://{}:{}{}".format(*server.address, ACTIONS_PATH)
        try:
            body = click("brandmon_ack", 7, slack.server.url_for("/hooks/1"), head["blocks"])
            now = str(int(time.time()))
            for stamp, signed in (
                (now, "v0=" + "0" * 64),  # not Slack's signature
                (str(int(time.time()) - 600), signature(SECRET, str(int(time.time()) - 600), body)),
            ):
                refused = httpx.post(
                    url,
                    content=body,
                    headers={"X-Slack-Request-Timestamp": stamp, "X-Slack-Signature": signed},
                )
                assert refused.status_code == 401
            assert httpx.post(url, content=body).status_code == 401  # unsigned
            assert acknowledgement(sink.storage, 7) is None and redraws == []
            signed = {
                "X-Slack-Request-Timestamp": now,
                "X-Slack-Signature": signature(SECRET, now, body),
                "Content-Type": "application/x-www-form-urlencoded",
            }
            assert httpx.post(url, content=body, headers=signed).status_code == 200
        finally:
            server.stop()
        # the head it was clicked on is redrawn at once, saying who took it on
        [redraw] = redraws
        assert redraw["replace_original"] is True
        assert "Acknowledged by <@U0MIA>" in dump(redraw["blocks"])
        # an acknowledged incident's crisis does not ping the user group again
        sink.send(page("crisis", "escalated", "2026-11-24T09:00:00+00:00"))
        crisis = slack.thread(WAR)[-1]
        assert "<!subteam^S0PR>" not in crisis["text"] and crisis["broadcast"]
        assert "Acknowledged by <@U0MIA>" in dump(slack.thread(PR)[0]["blocks"])
        # muted: the next incident's crisis reaches its thread, without ping or broadcast
        record(sink.storage, 8, MUTE, "U0MIA")
        muted = page("crisis", "opened", "2026-11-24T10:00:00+00:00")
        muted = changed(muted, incident_id=8)
        sink.send(Alert("Acme:8:crisis", "Acme", "page", muted.payload))
        last = slack.messages[WAR][-1]
        assert last["thread_ts"] and not last["broadcast"] and "<!subteam" not in last["text"]


def test_loud_complaints_reply_in_the_thread_and_the_resolution_closes_team_notices(
    sink: SlackSink, slack: FakeSlack
) -> None:
    opened = page("warning", "opened", "2026-11-24T08:40:00+00:00")
    opened = changed(opened, share=0.62, negative_reach=412.4)
    sink.send(opened)
    head = dump(slack.thread(PR)[0]["blocks"])
    assert "62% of the mentions negative" in head and "negative reach 412" in head
    loud = {
        "brand": "Acme",
        "incident_id": 7,
        "level": "warning",
        "at": "2026-11-24T08:55:00+00:00",
        "mention": {
            **opened.read(PagePayload).top_mentions[0].to_json(),
            "author": "NationalNews",
            "reach": 48.0,
        },
    }
    sink.send(Alert("Acme:7:mention:99:slack", "Acme", "mention", MentionPayload.from_json(loud)))
    reply = slack.thread(PR)[-1]
    assert "High-reach complaint" in dump(reply["blocks"]) and "NationalNews" in dump(
        reply["blocks"]
    )
    resolved = page("warning", "resolved", "2026-11-24T12:00:00+00:00", kind="resolved")
    sink.send(resolved)
    notice, closing = slack.messages[SAFETY]
    assert closing["thread_ts"] == notice["ts"] and "incident #7 is over" in dump(closing["blocks"])


def test_a_message_slack_refuses_for_good_does_not_hold_back_the_next(
    sink: SlackSink, slack: FakeSlack
) -> None:
    from alerts.outbox import OutboxSender
    from monitor.storage import enqueue

    handle = slack.handle

    def refuse_poison(request: Request) -> Response:
        body = request.get_json(silent=True) or {}
        if request.path.endswith("chat.postMessage") and "POISON" in body.get("text", ""):
            slack.calls.append(("chat.postMessage", body))
            return FakeSlack.reply({"ok": False, "error": "msg_too_long"})
        return handle(request)

    slack.server.clear()
    slack.server.expect_request(re.compile("/.*")).respond_with_handler(refuse_poison)
    poisoned = page("watch", "opened", "2026-11-24T08:40:00+00:00")
    poisoned = changed(poisoned, why="POISON " * 10)
    healthy = changed(page("watch", "opened", "2026-11-24T08:45:00+00:00"), incident_id=8)
    with sink.storage.session() as session:
        for key, alert in (("a", poisoned), ("b", healthy)):
            enqueue(
                session, key=key, brand="Acme", kind="page", payload=alert.payload, sinks=["slack"]
            )
        session.commit()
    report = OutboxSender(sink.storage, [sink]).deliver_due()
    assert report.dead == 1 and report.sent == 1
    assert "msg_too_long" in report.errors[0] and "chat.postMessage" in report.errors[0]
    # the next incident's page went out in the same pass, its head and its evidence
    assert any("POISON" not in m["text"] for m in slack.messages[PR])
