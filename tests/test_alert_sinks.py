"""The webhook and email sinks against loopback receivers: a web server and an SMTP server."""

from __future__ import annotations

import json
import socket
import socketserver
import threading
from collections.abc import Iterator
from datetime import datetime
from email import message_from_bytes, policy
from typing import Any

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from alerts.base import Alert, SinkError
from alerts.email import EmailConfig, EmailSink
from alerts.sinks import build_sinks
from alerts.webhook import WebhookSink, WebhookSinkConfig
from monitor.alert import PagePayload, payload_from_json, plain_time, show_times_in
from monitor.config import ConfigError, parse_config
from monitor.model import IncidentAck
from monitor.plugins import SINKS
from monitor.signing import verify

SECRET = "webhook-shared-secret"
PASSWORD = "smtp-password-value"


def page(level: str = "crisis", kind: str = "page") -> Alert:
    payload = {
        "brand": "Acme",
        "incident_id": 3,
        "level": level,
        "at": "2026-11-24T09:00:00+00:00",
        "started_at": "2026-11-24T08:30:00+00:00",
        "peak_level": level,
        "peak_at": "2026-11-24T09:00:00+00:00",
        "score": 12.0,
        "negative": 42,
        "expected": 3.0,
        "window_minutes": 15,
        "previous_window": 10,
        "thresholds": {"watch": 5.0, "warning": 7.0, "crisis": 10.0},
        "top_mentions": [
            {
                "source": "x",
                "author": "mia",
                "reach": 40.0,
                "text": "Acme made me sick",
                "url": "https://x.example/1",
            }
        ],
    }
    typed = PagePayload.from_json(payload)
    return Alert(key=f"Acme:3:{level}:{kind}", brand="Acme", kind=kind, payload=typed)


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- webhook ---------------------------------------------------------------------------------


@pytest.fixture
def webhook(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> WebhookSink:
    monkeypatch.setenv("TEST_ALERT_SECRET", SECRET)
    url = httpserver.url_for("/hooks/brandmon?token=query-secret")
    return WebhookSink(WebhookSinkConfig(url=url, secret_env="TEST_ALERT_SECRET"))


def test_the_webhook_posts_a_signed_alert(httpserver: HTTPServer, webhook: WebhookSink) -> None:
    received: list[Request] = []

    def record(request: Request) -> Response:
        received.append(request)
        return Response("", status=204)

    httpserver.expect_request("/hooks/brandmon", method="POST").respond_with_handler(record)
    webhook.send(page())
    [request] = received
    body = request.get_data()
    assert json.loads(body)["payload"]["negative"] == 42
    assert request.headers["Idempotency-Key"] == "Acme:3:crisis:page"
    timestamp = request.headers["X-Brandmon-Timestamp"]
    assert verify(SECRET, timestamp, request.headers["X-Brandmon-Signature"], body)
    assert not verify("other", timestamp, request.headers["X-Brandmon-Signature"], body)


@pytest.mark.parametrize(
    ("response", "message", "retry_after"),
    [
        (Response("slow", status=429, headers={"Retry-After": "40"}), "HTTP 429", 40),
        (Response("boom", status=500), "HTTP 500", None),
        (Response("", status=302, headers={"Location": "http://127.0.0.1:1/"}), "HTTP 302", None),
    ],
)
def test_webhook_refusals_are_sink_errors(
    httpserver: HTTPServer,
    webhook: WebhookSink,
    response: Response,
    message: str,
    retry_after: float | None,
) -> None:
    httpserver.expect_request("/hooks/brandmon").respond_with_response(response)
    with pytest.raises(SinkError) as error:
        webhook.send(page())
    assert message in str(error.value) and error.value.retry_after == retry_after
    assert "query-secret" not in str(error.value) and SECRET not in str(error.value)


def test_webhook_unreachable_or_unconfigured(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_ALERT_SECRET", SECRET)
    config = WebhookSinkConfig(
        url=f"http://127.0.0.1:{closed_port()}/x", secret_env="TEST_ALERT_SECRET"
    )
    with pytest.raises(SinkError, match="cannot reach"):
        WebhookSink(config).send(page())
    monkeypatch.delenv("TEST_ALERT_SECRET")
    with pytest.raises(SinkError, match="TEST_ALERT_SECRET"):
        WebhookSink(config).send(page())


# -- email -----------------------------------------------------------------------------------


class SMTPServer(socketserver.ThreadingTCPServer):
    """Just enough SMTP (RFC 5321) to receive mail on loopback, with AUTH PLAIN."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), SMTPHandler)
        self.messages: list[dict[str, Any]] = []
        self.logins: list[str] = []
        self.refuse: set[str] = set()


class SMTPHandler(socketserver.StreamRequestHandler):
    server: SMTPServer

    def reply(self, line: str) -> None:
        self.wfile.write(line.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost ESMTP test")
        envelope: dict[str, Any] = {"to": []}
        while line := self.rfile.readline():
            command = line.decode().strip()
            verb = command.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.wfile.write(b"250-localhost\r\n250 AUTH PLAIN\r\n")
            elif verb == "HELO":
                self.reply("250 localhost")
            elif verb == "AUTH":
                import base64

                self.server.logins.append(base64.b64decode(command.split()[-1]).decode())
                self.reply("235 2.7.0 Authentication successful")
            elif verb == "MAIL":
                envelope = {"from": command, "to": []}
                self.reply("250 OK")
            elif verb == "RCPT":
                if any(address in command for address in self.server.refuse):
                    self.reply("550 5.1.1 No such user")
                else:
                    envelope["to"].append(command)
                    self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = b""
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data += chunk
                envelope["data"] = data
                self.server.messages.append(envelope)
                self.reply("250 OK queued")
            elif verb in ("RSET", "NOOP"):
                self.reply("250 OK")
            elif verb == "QUIT":
                self.reply("221 Bye")
                return
            else:
                self.reply("502 Command not implemented")


@pytest.fixture
def smtp() -> Iterator[SMTPServer]:
    server = SMTPServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def email_sink(port: int, **options: Any) -> EmailSink:
    config = {
        "host": "127.0.0.1",
        "port": port,
        "security": "none",
        "sender": "brandmon@acme.example",
        "recipients": ["pr@acme.example", "care@acme.example"],
    }
    return EmailSink(EmailConfig.model_validate(config | options))


def test_alerts_are_mailed_and_threaded_per_incident(
    smtp: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_SMTP_USER", "alerts")
    monkeypatch.setenv("TEST_SMTP_PASSWORD", PASSWORD)
    sink = email_sink(
        smtp.server_address[1], username_env="TEST_SMTP_USER", password_env="TEST_SMTP_PASSWORD"
    )
    sink.send(page("warning"))
    sink.send(page("warning", kind="resolved"))
    first, resolved = (message_from_bytes(m["data"], policy=policy.default) for m in smtp.messages)
    assert first["Subject"] == "[WARNING] Acme: 42 negative mentions in 15 min"
    assert resolved["Subject"] == "[RESOLVED] Acme: incident #3 is over"
    assert len(smtp.messages[0]["to"]) == 2
    assert "Acme made me sick https://x.example/1" in first.get_content()
    assert first["In-Reply-To"] == resolved["In-Reply-To"] == resolved["References"]
    assert first["Message-ID"] != resolved["Message-ID"]
    sink.send(page("warning"))  # the same alert again gets the same Message-ID
    again = message_from_bytes(smtp.messages[2]["data"], policy=policy.default)
    assert again["Message-ID"] == first["Message-ID"]
    assert smtp.logins == [f"\0alerts\0{PASSWORD}"] * 3


def test_mail_refused_or_unreachable_is_a_sink_error(
    smtp: SMTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    smtp.refuse.add("care@acme.example")
    email_sink(smtp.server_address[1]).send(page())  # pr@ has it: not an error to retry
    assert len(smtp.messages) == 1
    smtp.refuse.add("pr@acme.example")
    with pytest.raises(SinkError, match="refused every recipient"):
        email_sink(smtp.server_address[1]).send(page())
    with pytest.raises(SinkError, match="cannot send"):
        email_sink(closed_port()).send(page())
    monkeypatch.delenv("TEST_SMTP_PASSWORD", raising=False)
    monkeypatch.setenv("TEST_SMTP_USER", "alerts")
    sink = email_sink(
        smtp.server_address[1], username_env="TEST_SMTP_USER", password_env="TEST_SMTP_PASSWORD"
    )
    with pytest.raises(SinkError, match="TEST_SMTP_PASSWORD"):
        sink.send(page())


WATCHER_PAGE = {
    "brand": "Acme",
    "incident_id": 3,
    "event": "opened",
    "level": "warning",
    "at": "2026-11-24T09:00:00+00:00",
    "started_at": "2026-11-24T08:30:00+00:00",
    "peak_level": "warning",
    "peak_at": "2026-11-24T09:00:00+00:00",
    "score": 8.12,
    "why": "42 negative mentions in 15 min; usually 3 at this time of day (rare)",
    "signal": "negative",
    "negative": 42.0,
    "expected": 3.0,
    "window_minutes": 15,
    "previous_window": 10.0,
    "share": 0.61,
    "negative_reach": 120.5,
    "thresholds": {"watch": 5.0, "warning": 7.0, "crisis": 10.0},
    "top_mentions": [
        {
            "id": 1,
            "source": "x",
            "author": "mia",
            "followers": 300,
            "reach": 40.0,
            "text": "Acme made me sick",
            "url": "https://x.example/1",
            "category": "complaint",
            "priority": "P3",
            "published_at": "2026-11-24T08:55:00+00:00",
        }
    ],
    "first_mentions": [],
}


def test_a_typed_payload_stores_the_json_the_outbox_always_held() -> None:
    """Rows queued before the payload was typed read back, and new rows keep their shape (the
    webhook's documented body), key order included."""
    loud = {
        "brand": "Acme",
        "incident_id": 3,
        "level": "warning",
        "at": "2026-11-24T09:15:00+00:00",
        "mention": WATCHER_PAGE["top_mentions"][0],  # type: ignore[index]
    }
    test = {"brand": "Acme", "message": "a test", "at": "2026-11-24T09:00:00+00:00"}
    for kind, data in (
        ("page", WATCHER_PAGE),
        ("resolved", WATCHER_PAGE),
        ("mention", loud),
        ("test", test),
    ):  # the outbox's own notices (undeliverable) are read back in test_outbox
        payload = payload_from_json(kind, json.loads(json.dumps(data)))
        assert json.dumps(payload.to_json()) == json.dumps(data), kind


def test_sinks_are_built_from_the_registry_in_the_configured_order() -> None:
    text = """
[storage]
url = "sqlite:///:memory:"

[[brands]]
name = "Acme"
keywords = ["acme"]

[alerts]
sinks = ["webhook", "console"]

[alerts.webhook]
url = "https://hooks.example/brandmon"
secret_env = "HOOK_SECRET"
"""
    config = parse_config(text, "brandmon.toml")
    assert set(SINKS) == {"console", "slack", "webhook", "email"}
    sinks = build_sinks(config, None)  # type: ignore[arg-type]  # neither touches storage
    assert [sink.name for sink in sinks] == ["webhook", "console"]


def test_the_console_says_times_one_way_and_how_long_an_incident_lasted() -> None:
    from test_slack import page

    from alerts.console import render

    head = render(page("crisis", "entered", "2026-11-24T10:05:00+00:00")).splitlines()[0]
    assert head.endswith("incident #7 since 2026-11-24 08:30 UTC")
    resolved = render(page("crisis", "resolved", "2026-11-24T16:20:00+00:00", kind="resolved"))
    assert resolved == (
        "[RESOLVED] Acme: incident #7 is over after 7 h 50 min (started 2026-11-24 08:30 UTC, "
        "peak crisis at 2026-11-24 16:20 UTC)"
    )


# -- [display] timezone ----------------------------------------------------------------------


@pytest.fixture
def warsaw() -> Iterator[None]:
    """Times shown in Europe/Warsaw (UTC+1 in November), as ``[display] timezone`` sets."""
    show_times_in("Europe/Warsaw")
    try:
        yield
    finally:
        show_times_in("UTC")


def test_console_email_and_slack_show_times_in_the_display_zone(
    warsaw: None, smtp: SMTPServer
) -> None:
    from alerts.console import render
    from alerts.slack_blocks import head_blocks, plain_text, state_block

    # 08:30 UTC is 09:30 in Warsaw in November (CET)
    assert render(page()).splitlines()[0].endswith("incident #3 since 2026-11-24 09:30 CET")
    email_sink(smtp.server_address[1]).send(page())
    body = message_from_bytes(smtp.messages[0]["data"], policy=policy.default).get_content()
    assert "since 2026-11-24 09:30 CET" in body and "UTC" not in body
    slack = plain_text(head_blocks(page()))
    assert "since 2026-11-24 09:30 CET" in slack and "UTC" not in slack
    ack = IncidentAck(
        incident_id=3, acknowledged_by="U1", acknowledged_at=datetime(2026, 11, 24, 8, 40)
    )
    assert "at 09:40 CET" in json.dumps(state_block(ack), ensure_ascii=False)


def test_a_zone_without_an_abbreviation_is_named_by_its_offset() -> None:
    show_times_in("Asia/Kuala_Lumpur")
    try:
        assert plain_time("2026-11-24T08:30:00+00:00") == "2026-11-24 16:30 UTC+08:00"
    finally:
        show_times_in("UTC")
    assert plain_time("2026-11-24T08:30:00+00:00") == "2026-11-24 08:30 UTC"


def test_an_unknown_zone_is_a_config_error_on_its_line() -> None:
    text = (
        '[[brands]]\nname = "Acme"\nkeywords = ["acme"]\n\n[display]\ntimezone = "Europe/Warsw"\n'
    )
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "brandmon.toml")
    assert [str(problem) for problem in raised.value.problems] == [
        "brandmon.toml:6: display.timezone: unknown time zone 'Europe/Warsw': expected an IANA "
        "name such as Europe/Warsaw"
    ]
    assert parse_config(text.replace("Warsw", "Warsaw"), "ok.toml").display.timezone == (
        "Europe/Warsaw"
    )
