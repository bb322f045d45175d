"""WeiboConnector against a loopback stand-in for the Weibo Open API v2.

The stand-in pages a feed as Weibo does: newest first, ``since_id`` and ``max_id`` filtering
(``max_id`` inclusive), ``count`` a page, ``next_cursor`` 0 when nothing older is left.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from fakes.sources import poll_once, refused
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import connectors.weibo
from connectors.base import PollResult, SourceError
from connectors.weibo import WeiboConnector, WeiboSource, weibo_time
from monitor.config import ConfigError, parse_config
from monitor.model import Cursor

FIXTURES = Path(__file__).parent / "fixtures" / "weibo"
JSON = "application/json;charset=UTF-8"
TOKEN = "2.00ExAmPlEtOkEnSecret0123456789abcdef"
MENTIONS, COMMENTS = "/2/statuses/mentions.json", "/2/comments/to_me.json"
NEWEST_MENTION, NEWEST_COMMENT = 5041567890123456, 5041569999000002
NOW = datetime(2024, 6, 3, 10, 45, tzinfo=UTC)


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WEIBO_ACCESS_TOKEN", TOKEN)
    monkeypatch.setattr(connectors.weibo, "utcnow", lambda: NOW)


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_bytes())


def poll(server: HTTPServer, cursor: Cursor | None = None, **options: object) -> PollResult:
    config = WeiboSource.model_validate(
        {"name": "weibo-crestfield", "type": "weibo", "base_url": server.url_for("/2")} | options
    )
    return poll_once(WeiboConnector(config), cursor)


def poll_error(server: HTTPServer, cursor: Cursor | None = None) -> SourceError:
    return refused(lambda: poll(server, cursor), TOKEN)


class Feed:
    """A Weibo timeline of ``entries`` (newest first) under ``key``, shaped like ``page``."""

    def __init__(self, page: str, key: str, entries: list[dict[str, Any]]) -> None:
        self.page, self.key, self.entries = page, key, entries

    def __call__(self, request: Request) -> Response:
        assert request.args["access_token"] == TOKEN
        since = int(request.args.get("since_id", "0"))
        most = int(request.args.get("max_id", "0")) or None
        matching = [
            entry
            for entry in self.entries
            if entry["id"] > since and (most is None or entry["id"] <= most)
        ]
        size = int(request.args["count"])
        body = load(self.page)
        body[self.key] = matching[:size]
        body["next_cursor"] = matching[size]["id"] if len(matching) > size else 0
        return Response(json.dumps(body, ensure_ascii=False), content_type=JSON)


def serve(
    server: HTTPServer,
    mentions: list[dict[str, Any]] | None = None,
    comments: list[dict[str, Any]] | None = None,
) -> None:
    if mentions is None:
        mentions = load("mentions.json")["statuses"]
    if comments is None:
        comments = load("comments_to_me.json")["comments"]
    server.expect_request(MENTIONS).respond_with_handler(
        Feed("empty_mentions.json", "statuses", mentions)
    )
    server.expect_request(COMMENTS).respond_with_handler(
        Feed("empty_comments.json", "comments", comments)
    )


def marks(result: PollResult) -> dict[str, str]:
    return json.loads(result.cursor.cursor or "{}")


def requests(server: HTTPServer, path: str) -> list[dict[str, str]]:
    return [dict(request.args) for request, _ in server.log if request.path == path]


# --- what a poll finds -------------------------------------------------------------------------


def test_mentions_are_normalised(httpserver: HTTPServer) -> None:
    serve(httpserver)
    result = poll(httpserver, feeds=["mentions"])

    complaint, english, repost, repost_of_deleted = result.mentions
    assert [m.external_id for m in result.mentions] == [
        "5041567890123456",
        "5041560011112222",
        "5041550000001111",
        "5041545555555555",
    ]
    assert {m.source_type for m in result.mentions} == {"weibo"}

    assert complaint.text == "@Crestfield炸鸡 外卖又晚了一个小时，鸡块都凉了，客服电话也打不通！"
    assert complaint.author == "@小明爱吃鸡"
    assert complaint.author_followers == 1204
    assert (complaint.likes, complaint.reposts, complaint.replies) == (12, 3, 5)
    assert complaint.url == "https://weibo.com/1404376560/5041567890123456"
    # "Mon Jun 03 18:00:00 +0800 2024"
    assert complaint.published_at == datetime(2024, 6, 3, 10, 0, tzinfo=UTC)
    assert complaint.language is None  # left to detection
    assert complaint.extra == {"kind": "mention"}

    assert english.author == "@anna_in_kl"
    assert english.published_at == datetime(2024, 6, 3, 9, 30, tzinfo=UTC)

    assert repost.text == (
        "说得对//@小明爱吃鸡: @Crestfield炸鸡 又涨价了\n"
        "//@小明爱吃鸡: @Crestfield炸鸡 套餐又涨价了，分量还变少"
    )
    assert (repost.author, repost.author_followers) == ("@美玲_KL", 58)
    assert repost.extra == {"kind": "mention", "reposted_id": "5041540000000001"}

    assert repost_of_deleted.text == "转发微博 @Crestfield炸鸡"  # not "此微博已被作者删除"
    assert repost_of_deleted.extra == {"kind": "mention"}

    assert marks(result) == {"mentions": str(NEWEST_MENTION)}


def test_comments_are_normalised(httpserver: HTTPServer) -> None:
    serve(httpserver)
    result = poll(httpserver, feeds=["comments"])

    first, reply = result.mentions
    assert first.external_id == "comment-5041569999000002"
    assert first.text == (
        "买一送一根本没有货，门店说活动已经结束了\n"
        "— on @Crestfield炸鸡: Crestfield 炸鸡新品上市：香辣鸡翅买一送一，仅限本周！"
    )
    assert (first.author, first.author_followers) == ("@美玲_KL", 58)
    assert first.url == "https://weibo.com/7823456701/5041230123456789"  # the post commented on
    assert first.published_at == datetime(2024, 6, 3, 10, 5, tzinfo=UTC)
    assert (first.likes, first.reposts, first.replies) == (None, None, None)
    assert first.extra == {"kind": "comment", "status_id": "5041230123456789"}

    assert reply.text.startswith("回复@美玲_KL:同感，白跑一趟\n— on @Crestfield炸鸡: ")
    assert reply.author == "@小明爱吃鸡"

    assert marks(result) == {"comments": str(NEWEST_COMMENT)}


def test_requests_of_a_first_poll(httpserver: HTTPServer) -> None:
    serve(httpserver)
    result = poll(httpserver)

    assert len(result.mentions) == 6
    assert requests(httpserver, MENTIONS) == [{"count": "200", "access_token": TOKEN}]
    assert requests(httpserver, COMMENTS) == [{"count": "200", "access_token": TOKEN}]
    assert marks(result) == {"mentions": str(NEWEST_MENTION), "comments": str(NEWEST_COMMENT)}


def test_a_re_poll_asks_since_the_newest_and_finds_nothing_twice(httpserver: HTTPServer) -> None:
    serve(httpserver)
    first = poll(httpserver)
    httpserver.clear_log()
    second = poll(httpserver, first.cursor)

    assert second.mentions == []
    assert second.cursor == first.cursor
    assert requests(httpserver, MENTIONS)[0]["since_id"] == str(NEWEST_MENTION)
    assert requests(httpserver, COMMENTS)[0]["since_id"] == str(NEWEST_COMMENT)


def burst(size: int) -> list[dict[str, Any]]:
    """``size`` mentions newer than the fixture's, newest first, each shaped like its first."""
    template = load("mentions.json")["statuses"][0]
    statuses = []
    for n in range(size, 0, -1):
        status = copy.deepcopy(template)
        status_id = NEWEST_MENTION + n * 1000
        status.update(
            id=status_id, idstr=str(status_id), mid=str(status_id), text=f"@Crestfield炸鸡 {n}"
        )
        statuses.append(status)
    return statuses


def test_a_burst_is_read_back_to_the_last_post_seen(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    new = burst(450)
    serve(httpserver, mentions=new + load("mentions.json")["statuses"])
    cursor = Cursor(cursor=json.dumps({"mentions": str(NEWEST_MENTION)}))
    result = poll(httpserver, cursor, feeds=["mentions"])

    pages = requests(httpserver, MENTIONS)
    assert [page.get("max_id") for page in pages] == [
        None,
        str(new[199]["id"] - 1),
        str(new[399]["id"] - 1),
    ]
    assert {page["since_id"] for page in pages} == {str(NEWEST_MENTION)}
    assert [m.external_id for m in result.mentions] == [status["idstr"] for status in new]
    assert marks(result) == {"mentions": new[0]["idstr"]}
    assert result.truncated is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_max_pages_cuts_a_burst_short(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    new = burst(450)
    serve(httpserver, mentions=new)
    cursor = Cursor(cursor=json.dumps({"mentions": str(NEWEST_MENTION)}))
    result = poll(httpserver, cursor, feeds=["mentions"], max_pages=2)

    assert len(result.mentions) == 400
    assert result.truncated == 200
    assert marks(result) == {"mentions": new[0]["idstr"]}
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "source=weibo-crestfield" in warning.getMessage()


def test_weibo_times() -> None:
    assert weibo_time("Tue May 31 17:46:55 +0800 2011") == datetime(
        2011, 5, 31, 17, 46, 55, tzinfo=timezone(timedelta(hours=8))
    )
    assert weibo_time("Tue May 31 17:46:55 +0800 2011") == datetime(
        2011, 5, 31, 9, 46, 55, tzinfo=UTC
    )
    for bad in (None, "", "2011-05-31T17:46:55+08:00", "Tue Mai 31 17:46:55 +0800 2011"):
        assert weibo_time(bad) is None


# --- configuration -----------------------------------------------------------------------------


def test_check_config_names_the_line_of_a_bad_setting() -> None:
    text = """
[[brands]]
name = "Crestfield"
keywords = ["crestfield"]

[[sources]]
name = "weibo"
type = "weibo"
feeds = ["mentions", "search"]
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "brandmon.toml")
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.startswith("brandmon.toml:9: sources[0].feeds")


def test_missing_token(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WEIBO_ACCESS_TOKEN")
    error = poll_error(httpserver)
    assert (error.kind, str(error)) == (
        "auth",
        "environment variable WEIBO_ACCESS_TOKEN is not set",
    )
    assert httpserver.log == []


# --- rate limits and refusals ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["user_rate_limited.json", "ip_rate_limited.json", "interface_rate_limited.json"]
)
def test_rate_limits_rest_until_the_next_hour(httpserver: HTTPServer, name: str) -> None:
    httpserver.expect_request(MENTIONS).respond_with_json(load(name), status=403)
    error = poll_error(httpserver)
    assert error.kind == "http_429"
    assert error.retry_after == 15 * 60 + 60  # 10:45 -> 11:00, and a minute
    assert str(load(name)["error_code"]) in str(error)


def test_a_limit_on_the_second_feed_keeps_the_first(httpserver: HTTPServer) -> None:
    httpserver.expect_request(MENTIONS).respond_with_handler(
        Feed("empty_mentions.json", "statuses", load("mentions.json")["statuses"])
    )
    httpserver.expect_request(COMMENTS).respond_with_json(
        load("interface_rate_limited.json"), status=403
    )
    before = Cursor(cursor=json.dumps({"comments": "5041000000000000"}))
    result = poll(httpserver, before)

    assert len(result.mentions) == 4
    assert result.rest == 15 * 60 + 60
    assert marks(result) == {"mentions": str(NEWEST_MENTION), "comments": "5041000000000000"}


@pytest.mark.parametrize(
    ("name", "status"), [("expired_token.json", 401), ("invalid_token.json", 400)]
)
def test_token_errors_are_auth_errors(httpserver: HTTPServer, name: str, status: int) -> None:
    httpserver.expect_request(MENTIONS).respond_with_json(load(name), status=status)
    error = poll_error(httpserver)
    assert error.kind == "auth"
    assert load(name)["error"] in str(error)


def test_an_error_body_with_a_200_is_an_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(MENTIONS).respond_with_json(load("expired_token.json"))
    assert poll_error(httpserver).kind == "auth"


def test_other_refusals_keep_their_kind(httpserver: HTTPServer) -> None:
    body = {
        "error": "Illegal request!",
        "error_code": 10016,
        "request": "/2/statuses/mentions.json",
    }
    httpserver.expect_request(MENTIONS).respond_with_json(body, status=400)
    error = poll_error(httpserver)
    assert error.kind == "http_4xx"
    assert "10016 Illegal request!" in str(error)


def test_server_errors_pass_through(httpserver: HTTPServer) -> None:
    httpserver.expect_request(MENTIONS).respond_with_data("<html>502</html>", status=502)
    assert poll_error(httpserver).kind == "http_5xx"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>\xe7\xb3\xbb\xe7\xbb\x9f\xe7\xb9\x81\xe5\xbf\x99</html>",
        b"[]",
        b'{"statuses": {}}',
        b'{"statuses": [5041567890123456]}',
    ],
    ids=["html", "list", "statuses-object", "statuses-of-ids"],
)
def test_wrong_shape_is_malformed(httpserver: HTTPServer, body: bytes) -> None:
    httpserver.expect_request(MENTIONS).respond_with_data(body, content_type=JSON)
    error = poll_error(httpserver)
    assert error.kind == "malformed"
    assert MENTIONS in str(error)
