"""The Slack sink against a loopback fake of the Slack Web API (real slack-sdk client)."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from alerts.base import Alert, SinkError
from alerts.base import test_alert as marked_test_alert
from alerts.slack import SlackSink
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
channel = "#pr-alerts"
channels = {{ crisis = "#war-room" }}
crisis_mention = "<!subteam^S0PR>"
base_url = "{base}"

[[routes]]
category = "crisis_risk"
channel = "#safety-team"
team = "Food safety"
min_priority = "P2"
"""


class FakeSlack:
    """Records every Web API call and answers like Slack does."""

    def __init__(self, server: HTTPServer) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.messages: dict[str, list[dict[str, Any]]] = {}
        self.fail: list[Response] = []  # responses to give before behaving again
        self.server = server
        server.expect_request(re.compile("/.*")).respond_with_handler(self.handle)

    def handle(self, request: Request) -> Response:
        method = request.path.strip("/")
        if request.is_json:
            body = request.get_json()
        else:
            body = {**request.args.to_dict(), **request.form.to_dict()}
        self.calls.append((method, body))
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.reply({"ok": False, "error": "invalid_auth"})
        if self.fail:
            return self.fail.pop(0)
        if method == "chat.postMessage":
            ts = f"1700000000.{len(self.calls):06d}"
            message = {"ts": ts, "text": body["text"], "metadata": body.get("metadata")}
            if body.get("thread_ts"):
                message["thread_ts"] = body["thread_ts"]
            self.messages.setdefault(body["channel"], []).append(message)
            return self.reply({"ok": True, "channel": body["channel"], "ts": ts})
        if method in ("conversations.history", "conversations.replies"):
            found = self.messages.get(body["channel"], [])
            if method == "conversations.replies":
                # like Slack: the thread's parent first, then its replies
                found = [m for m in found if body["ts"] in (m["ts"], m.get("thread_ts"))]
            return self.reply({"ok": True, "messages": list(reversed(found))})
        if method == "chat.update":
            return self.reply({"ok": True, "channel": body["channel"], "ts": body["ts"]})
        if method == "files.getUploadURLExternal":
            url = self.server.url_for("/upload")
            return self.reply({"ok": True, "upload_url": url, "file_id": "F1"})
        if method == "upload":
            return Response("OK - 1234", status=200)
        if method == "files.completeUploadExternal":
            return self.reply({"ok": True, "files": [{"id": "F1"}]})
        return self.reply({"ok": False, "error": "unknown_method"})

    @staticmethod
    def reply(body: dict[str, Any], status: int = 200, **headers: str) -> Response:
        return Response(
            json.dumps(body), status=status, content_type="application/json", headers=headers
        )

    def posts(self) -> list[dict[str, Any]]:
        return [body for method, body in self.calls if method == "chat.postMessage"]

    def called(self, name: str) -> list[dict[str, Any]]:
        return [body for method, body in self.calls if method == name]


@pytest.fixture
def slack(httpserver: HTTPServer) -> FakeSlack:
    return FakeSlack(httpserver)


@pytest.fixture
def sink(slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SlackSink]:
    monkeypatch.setenv("TEST_SLACK_TOKEN", TOKEN)
    text = CONFIG.format(db=tmp_path / "brandmon.db", base=slack.server.url_for("/"))
    config = parse_config(text, "brandmon.toml")
    storage = Storage(config.storage.url)
    storage.create_schema()
    yield SlackSink(config, storage)
    storage.close()


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
    return Alert(key=f"Acme:7:{at}:{kind}:{level}", brand="Acme", kind=kind, payload=payload)


def text_of(post: dict[str, Any]) -> str:
    return json.dumps(post["blocks"], ensure_ascii=False)


def test_a_page_opens_a_thread_and_escalations_reply_in_it(
    sink: SlackSink, slack: FakeSlack
) -> None:
    sink.send(page("warning", "opened", "2026-11-24T08:40:00+00:00"))
    [first] = [p for p in slack.posts() if p["channel"] == "#pr-alerts"]
    assert "thread_ts" not in first
    blocks = text_of(first)
    assert "WARNING — Acme" in blocks
    assert "42 negative mentions in 15 min; usually 3 at this time of day" in blocks
    assert "×3.5 on the previous 15 min" in blocks
    # top mentions linked, user text escaped for mrkdwn
    assert (
        "<https://youtube.example/watch?v=1|Acme kitchen video: &lt;rats&gt; &amp; dirty" in blocks
    )
    assert "FoodieTravels (reach 62, youtube)" in blocks
    assert "crisis risk ×1" in blocks and "complaint ×1" in blocks
    assert first["metadata"]["event_payload"]["key"].startswith("Acme:7:")

    sink.send(page("crisis", "escalated", "2026-11-24T09:00:00+00:00"))
    opened = slack.messages["#pr-alerts"][0]["ts"]
    crisis_posts = [p for p in slack.posts() if p["channel"] == "#war-room"]
    # the crisis channel is another channel: the incident's thread there starts with the page
    assert len(crisis_posts) == 1 and "<!subteam^S0PR> 42 negative" in crisis_posts[0]["text"]
    # when the incident opened, the safety team got the crisis-risk mention (P1 within P2), not
    # the P3 complaint; escalations do not repeat it
    [routed] = [p for p in slack.posts() if p["channel"] == "#safety-team"]
    assert "Food safety: 1 crisis risk mention(s)" in text_of(routed)
    assert "acme refund" not in text_of(routed).lower()
    # the chart of the last 24 hours is attached to the crisis page's thread
    [upload] = slack.called("files.completeUploadExternal")
    assert "#war-room" in json.dumps(upload) or upload.get("channel_id") == "#war-room"
    assert opened  # the warning thread is untouched by a page for another channel

    sink.send(page("warning", "resolved", "2026-11-24T12:00:00+00:00", kind="resolved"))
    # the resolution closes both threads the incident opened, and updates both heads
    war_room = slack.messages["#war-room"][0]["ts"]
    replies = {p["channel"]: p for p in slack.posts()[-2:]}
    assert replies["#pr-alerts"]["thread_ts"] == opened
    assert replies["#war-room"]["thread_ts"] == war_room
    assert all("incident #7 is over" in text_of(r) for r in replies.values())
    updates = {u["channel"]: u for u in slack.called("chat.update")}
    assert updates["#pr-alerts"]["ts"] == opened and updates["#war-room"]["ts"] == war_room
    assert "RESOLVED" in json.dumps(updates["#pr-alerts"]["blocks"])


def test_an_alert_sent_again_after_a_crash_is_not_posted_twice(
    sink: SlackSink, slack: FakeSlack
) -> None:
    alert = page("warning", "opened", "2026-11-24T08:40:00+00:00")
    sink.send(alert)
    sink.send(alert)  # the outbox re-sends: Slack had said ok, the row was not yet marked sent
    assert len([p for p in slack.posts() if p["channel"] == "#pr-alerts"]) == 1
    assert len([p for p in slack.posts() if p["channel"] == "#safety-team"]) == 1


def test_rate_limits_and_errors_keep_the_alert_for_later(sink: SlackSink, slack: FakeSlack) -> None:
    slack.fail.append(
        FakeSlack.reply({"ok": False, "error": "ratelimited"}, 429, **{"Retry-After": "17"})
    )
    with pytest.raises(SinkError) as limited:
        sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
    assert limited.value.retry_after == 17
    slack.fail.append(FakeSlack.reply({"ok": False, "error": "internal_error"}, 500))
    with pytest.raises(SinkError, match="internal_error|HTTP 500"):
        sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
    slack.fail.append(FakeSlack.reply({"ok": False, "error": "channel_not_found"}))
    with pytest.raises(SinkError, match="channel_not_found"):
        sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))
    assert slack.posts() == []
    sink.send(page("watch", "opened", "2026-11-24T08:40:00+00:00"))  # Slack is back
    assert [p["channel"] for p in slack.posts()] == ["#pr-alerts", "#safety-team"]


def test_bad_or_missing_tokens_are_reported_without_the_token(
    sink: SlackSink, slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SLACK_TOKEN", "xoxb-wrong")
    sink._client = None
    with pytest.raises(SinkError) as wrong:
        sink.send(marked_test_alert("Acme"))
    assert "invalid_auth" in str(wrong.value) and "xoxb" not in str(wrong.value)
    monkeypatch.delenv("TEST_SLACK_TOKEN")
    sink._client = None
    with pytest.raises(SinkError, match="TEST_SLACK_TOKEN"):
        sink.send(marked_test_alert("Acme"))


def test_slack_unreachable_is_a_sink_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_SLACK_TOKEN", TOKEN)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    text = CONFIG.format(db=tmp_path / "b.db", base=f"http://127.0.0.1:{port}/")
    config = parse_config(text, "brandmon.toml")
    storage = Storage(config.storage.url)
    storage.create_schema()
    with pytest.raises(SinkError, match="cannot reach Slack"):
        SlackSink(config, storage).send(marked_test_alert("Acme"))
    storage.close()


def test_test_alerts_are_clearly_marked(sink: SlackSink, slack: FakeSlack) -> None:
    sink.send(marked_test_alert("Acme"))
    [post] = slack.posts()
    assert post["channel"] == "#pr-alerts" and "[TEST]" in post["text"]


def test_alerts_wait_in_the_outbox_while_slack_is_down_and_go_out_in_order(
    sink: SlackSink, slack: FakeSlack
) -> None:
    from datetime import timedelta

    from alerts.outbox import OutboxSender, enqueue
    from monitor.model import utcnow

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
    # in order, and the later two in the first one's thread
    posted = slack.messages["#pr-alerts"]
    keys = [m["metadata"]["event_payload"]["key"] for m in posted]
    assert keys == [f"{a.key}:slack" for a in alerts]
    assert [m.get("thread_ts") for m in posted] == [None, posted[0]["ts"], posted[0]["ts"]]


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

    from alerts.outbox import enqueue
    from monitor.model import AlertOutbox

    db = tmp_path / "brandmon.db"
    config = tmp_path / "brandmon.toml"
    config.write_text(
        CONFIG.format(db=db, base=slack.server.url_for("/"))
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
    keys = [m["metadata"]["event_payload"]["key"] for m in slack.messages["#pr-alerts"]]
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
    sink.send(page("crisis", "opened", "2026-11-24T09:00:00+00:00"))
    assert [p["channel"] for p in slack.posts()] == ["#war-room", "#safety-team"]
