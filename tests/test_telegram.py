"""TelegramConnector against a loopback stand-in for the Bot API's ``getUpdates``.

The stand-in keeps a bot's update queue as Telegram does: it answers the updates from
``offset`` on, ``limit`` at a time, oldest first.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fakes.sources import poll_once, refused
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.base import PollResult, SourceError
from connectors.telegram import TelegramConnector, TelegramSource
from monitor.config import ConfigError, parse_config
from monitor.model import Cursor

FIXTURES = Path(__file__).parent / "fixtures" / "telegram"
JSON = "application/json"
TOKEN = "7012345678:AAEexampleSecretTokenValue_0123456789"
METHOD = f"/bot{TOKEN}/getUpdates"
FIRST_UPDATE = 858912001
NEXT_OFFSET = 858912007  # after the fixture's last update


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", TOKEN)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def poll(server: HTTPServer, cursor: Cursor | None = None, **options: object) -> PollResult:
    config = TelegramSource.model_validate(
        {"name": "tg-crestfield", "type": "telegram", "base_url": server.url_for("")} | options
    )
    return poll_once(TelegramConnector(config), cursor)


def poll_error(server: HTTPServer, cursor: Cursor | None = None) -> SourceError:
    return refused(lambda: poll(server, cursor), TOKEN, TOKEN.split(":")[1])


class Bot:
    """A bot's update queue, served as ``getUpdates`` serves it."""

    def __init__(self, updates: list[dict[str, Any]]) -> None:
        self.updates = updates

    def __call__(self, request: Request) -> Response:
        offset = int(request.args.get("offset", "0"))
        limit = int(request.args["limit"])
        due = [update for update in self.updates if update["update_id"] >= offset][:limit]
        return Response(json.dumps({"ok": True, "result": due}), content_type=JSON)


def fixture_updates() -> list[dict[str, Any]]:
    return json.loads(fixture("updates.json"))["result"]


def burst(size: int) -> list[dict[str, Any]]:
    """``size`` group messages after the fixture's updates, each shaped like its first."""
    template = fixture_updates()[0]
    updates = []
    for n in range(size):
        update = copy.deepcopy(template)
        update["update_id"] = NEXT_OFFSET + n
        update["message"].update(message_id=5000 + n, date=1717410000 + n, text=f"Crestfield {n}")
        updates.append(update)
    return updates


def serve(server: HTTPServer, updates: list[dict[str, Any]]) -> None:
    server.expect_request(METHOD).respond_with_handler(Bot(updates))


def offsets(server: HTTPServer) -> list[str | None]:
    return [request.args.get("offset") for request, _ in server.log]


# --- what a poll finds -------------------------------------------------------------------------


def test_messages_are_normalised(httpserver: HTTPServer) -> None:
    serve(httpserver, fixture_updates())
    result = poll(httpserver)

    # The join notice (no text) is skipped; the edit is the message again, under its id.
    group, channel, private_group, edit, direct = result.mentions
    assert [m.external_id for m in result.mentions] == [
        "-1001873456123:4417",
        "-1001999888777:212",
        "-1002233445566:88",
        "-1001873456123:4417",
        "7345678901:31",
    ]
    assert {m.source for m in result.mentions} == {"tg-crestfield"}
    assert {m.source_type for m in result.mentions} == {"telegram"}

    assert group.text == (
        "Crestfield delivery 2 hours late again, and the fries were cold 😡 @CrestfieldCare"
    )
    assert group.author == "@aisyah_r"
    assert group.url == "https://t.me/crestfieldfans/4417"
    assert group.published_at == datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
    assert group.language is None  # language_code is the sender's app language
    assert group.author_followers is None
    assert group.extra == {
        "chat_type": "supergroup",
        "chat_id": "-1001873456123",
        "chat_title": "Crestfield Fans MY",
    }

    assert channel.author == "Makan Deals"  # a channel post has no "from"
    assert channel.url == "https://t.me/makandeals/212"
    assert channel.extra["chat_type"] == "channel"

    assert private_group.text == "Receipt from Crestfield Bangsar: charged twice"  # the caption
    assert private_group.author == "Wei Ling"  # no username: the name
    assert private_group.url == "https://t.me/c/2233445566/88"  # opens for the group's members

    assert edit.text.endswith("(order #5521)")
    assert edit.extra["edited"] == "true"

    assert direct.url is None  # a private chat has no link
    assert direct.extra["chat_type"] == "private"

    assert result.cursor == Cursor(cursor=str(NEXT_OFFSET))
    assert (result.truncated, result.rest) == (None, None)


def test_request_of_a_first_poll(httpserver: HTTPServer) -> None:
    serve(httpserver, [])
    assert poll(httpserver) == PollResult()

    [(request, _)] = httpserver.log
    assert request.path == METHOD
    assert dict(request.args) == {
        "limit": "100",
        "timeout": "0",
        "allowed_updates": '["message", "channel_post", "edited_message", "edited_channel_post"]',
    }


def test_a_re_poll_confirms_and_sees_nothing_twice(httpserver: HTTPServer) -> None:
    bot = Bot(fixture_updates())
    httpserver.expect_request(METHOD).respond_with_handler(bot)
    first = poll(httpserver)
    second = poll(httpserver, first.cursor)

    assert second == PollResult(cursor=Cursor(cursor=str(NEXT_OFFSET)))
    assert offsets(httpserver) == [None, str(NEXT_OFFSET)]

    bot.updates += burst(1)
    third = poll(httpserver, second.cursor)
    assert [m.external_id for m in third.mentions] == ["-1001873456123:5000"]
    assert third.cursor == Cursor(cursor=str(NEXT_OFFSET + 1))


def test_a_burst_is_read_page_by_page(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    serve(httpserver, burst(250))
    result = poll(httpserver, Cursor(cursor=str(NEXT_OFFSET)))

    assert offsets(httpserver) == [str(NEXT_OFFSET + n) for n in (0, 100, 200)]
    assert [m.text for m in result.mentions] == [f"Crestfield {n}" for n in range(250)]
    assert len({m.external_id for m in result.mentions}) == 250
    assert result.cursor == Cursor(cursor=str(NEXT_OFFSET + 250))
    assert result.truncated is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_max_pages_cuts_a_burst_short_and_the_next_poll_goes_on(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    serve(httpserver, burst(250))
    result = poll(httpserver, Cursor(cursor=str(NEXT_OFFSET)), max_pages=2)

    assert len(httpserver.log) == 2
    assert len(result.mentions) == 200
    assert result.truncated == 100
    assert result.cursor == Cursor(cursor=str(NEXT_OFFSET + 200))
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "source=tg-crestfield" in warning.getMessage()
    assert "max_pages" in warning.getMessage()
    assert TOKEN not in warning.getMessage()

    rest = poll(httpserver, result.cursor, max_pages=2)
    assert [m.text for m in rest.mentions] == [f"Crestfield {n}" for n in range(200, 250)]
    assert rest.truncated is None


def test_max_pages_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_pages"):
        TelegramSource.model_validate({"name": "tg", "type": "telegram", "max_pages": 0})


def test_check_config_names_the_line_of_a_bad_setting() -> None:
    text = """
[[brands]]
name = "Crestfield"
keywords = ["crestfield"]

[[sources]]
name = "tg"
type = "telegram"
token_env = "not a variable name"
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "brandmon.toml")
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.startswith("brandmon.toml:9: sources[0].token_env:")


# --- refusals and failures ---------------------------------------------------------------------


def test_flood_control_honours_retry_after_from_the_body(httpserver: HTTPServer) -> None:
    httpserver.expect_request(METHOD).respond_with_data(
        fixture("flood.json"), status=429, content_type=JSON
    )
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", 35.0)
    assert "Too Many Requests: retry after 35" in str(error)
    assert "/bot<token>/getUpdates" in str(error)


def test_a_retry_after_header_is_enough(httpserver: HTTPServer) -> None:
    httpserver.expect_request(METHOD).respond_with_data(
        fixture("flood.json"), status=429, content_type=JSON, headers={"Retry-After": "35"}
    )
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", 35.0)
    assert len(httpserver.log) == 1  # the body need not be read


def test_a_wrong_token_is_an_auth_error_without_the_token(httpserver: HTTPServer) -> None:
    httpserver.expect_request(METHOD).respond_with_data(
        fixture("unauthorized.json"), status=401, content_type=JSON
    )
    error = poll_error(httpserver)
    assert error.kind == "auth"
    assert "Unauthorized" in str(error)


def test_a_webhook_on_the_bot_is_named(httpserver: HTTPServer) -> None:
    httpserver.expect_request(METHOD).respond_with_data(
        fixture("conflict.json"), status=409, content_type=JSON
    )
    error = poll_error(httpserver)
    assert error.kind == "http_4xx"
    assert "webhook is active" in str(error)


def test_server_errors_and_unreachable_servers_do_not_show_the_token(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request(METHOD).respond_with_data("Bad Gateway", status=502)
    assert poll_error(httpserver).kind == "http_5xx"

    closed = HTTPServer(host="127.0.0.1", port=0)
    closed.start()
    closed.stop()  # nothing listens on its port any more
    error = poll_error(closed)
    assert error.kind == "connect"


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>502 Bad Gateway</body></html>",
        b'[{"update_id": 1}]',
        b'{"ok": true, "result": {"update_id": 1}}',
        b'{"ok": true, "result": [858912001]}',
        b'{"ok": false, "error_code": 400, "description": "Bad Request: wrong offset"}',
    ],
    ids=["html", "list", "result-object", "result-of-ids", "ok-false"],
)
def test_wrong_shape_is_malformed_or_refused(httpserver: HTTPServer, body: bytes) -> None:
    httpserver.expect_request(METHOD).respond_with_data(body, content_type=JSON)
    error = poll_error(httpserver)
    assert error.kind == ("http_4xx" if b'"ok": false' in body else "malformed")


def test_missing_token(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    error = poll_error(httpserver)
    assert (error.kind, str(error)) == (
        "auth",
        "environment variable TELEGRAM_BOT_TOKEN is not set",
    )
    assert httpserver.log == []
