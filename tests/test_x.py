"""XConnector against a loopback stand-in for the X API v2 recent search."""

from __future__ import annotations

import asyncio
import json
import time
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import connectors.x
from connectors.base import Cursor, PollResult, SourceError
from connectors.http import make_client
from connectors.x import XConnector
from monitor.config import XSource

FIXTURES = Path(__file__).parent / "fixtures" / "x"
JSON = "application/json; charset=utf-8"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAtest%2Fsecret%2Bbearer%3Dtoken"
SEARCH = "/2/tweets/search/recent"
NOW = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)

FIRST, UNDETERMINED, LONG = "1797568909931458577", "1797564199728066577", "1797556851307458577"
NEWER, NEWER_ON_PAGE_2 = "1797589172614082577", "1797580272300994577"
PAGE_2 = "b26v89c19zqg8o3frr6xo6mybjcq"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("X_BEARER_TOKEN", TOKEN)
    # Recent search reaches back seven days; the fixtures are from 3 June 2024.
    monkeypatch.setattr(connectors.x, "utcnow", lambda: NOW)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def poll(server: HTTPServer, cursor: Cursor | None = None, **options: object) -> PollResult:
    config = XSource.model_validate(
        {
            "name": "x-acme",
            "type": "x",
            "query": "acme -is:retweet",
            "base_url": server.url_for("/2"),
        }
        | options
    )

    async def run() -> PollResult:
        async with make_client(timeout=5.0) as client:
            return await XConnector(config).poll(client, cursor or Cursor())

    return asyncio.run(run())


def poll_error(server: HTTPServer, cursor: Cursor | None = None) -> SourceError:
    with pytest.raises(SourceError) as caught:
        poll(server, cursor)
    assert TOKEN not in str(caught.value)
    return caught.value


def serve(server: HTTPServer, name: str) -> None:
    server.expect_request(SEARCH).respond_with_data(fixture(name), content_type=JSON)


def searches(server: HTTPServer) -> list[dict[str, str]]:
    return [dict(request.args) for request, _ in server.log]


# --- what a poll finds -------------------------------------------------------------------------


def test_posts_are_normalised(httpserver: HTTPServer) -> None:
    serve(httpserver, "search.json")
    result = poll(httpserver)

    # The post without an id is skipped.
    first, undetermined, long = result.mentions
    assert [m.external_id for m in result.mentions] == [FIRST, UNDETERMINED, LONG]
    assert {m.source for m in result.mentions} == {"x-acme"}
    assert {m.source_type for m in result.mentions} == {"x"}

    assert first.url == f"https://x.com/roadrunner/status/{FIRST}"
    assert first.text == "Acme rocket skates & their brakes: a disaster >:( https://t.co/a1B2c3D4e5"
    assert first.author == "@roadrunner"
    assert first.author_followers == 48_213
    assert (first.likes, first.reposts, first.replies, first.views) == (87, 12 + 3, 4, 15_403)
    assert first.language == "en"
    assert first.published_at == datetime(2024, 6, 3, 10, 0, tzinfo=UTC)

    # Its author is not in the includes: no name, no follower count, a URL that still works.
    assert undetermined.url == f"https://x.com/i/web/status/{UNDETERMINED}"
    assert (undetermined.author, undetermined.author_followers) == (None, None)
    assert undetermined.language is None  # "und"
    assert (undetermined.likes, undetermined.reposts, undetermined.views) == (2, 0, None)

    assert long.text.endswith("bought in 2023. Short answer: no refunds.")  # the note_tweet
    assert (long.author, long.author_followers) == ("@wile_e", 310)
    assert long.reposts == 2  # no retweet_count: the quotes alone

    assert result.cursor == Cursor(cursor=FIRST)


def test_request_of_a_first_poll(httpserver: HTTPServer) -> None:
    serve(httpserver, "search.json")
    poll(httpserver)

    # One page only, although the response offers a next_token.
    [(request, _)] = httpserver.log
    assert request.path == SEARCH
    assert request.headers["Authorization"] == f"Bearer {TOKEN}"
    assert dict(request.args) == {
        "query": "acme -is:retweet",
        "max_results": "100",
        "tweet.fields": "created_at,public_metrics,lang,author_id,conversation_id,note_tweet",
        "expansions": "author_id",
        "user.fields": "username,name,public_metrics,verified",
    }


def test_second_poll_asks_since_the_newest_post_and_follows_pages(httpserver: HTTPServer) -> None:
    serve(httpserver, "search.json")
    first = poll(httpserver)
    httpserver.clear()

    def newer(request: Request) -> Response:
        page = (
            "newer_page2.json" if request.args.get("next_token") == PAGE_2 else "newer_page1.json"
        )
        return Response(fixture(page), content_type=JSON)

    httpserver.expect_request(SEARCH).respond_with_handler(newer)
    second = poll(httpserver, first.cursor)

    assert [m.external_id for m in second.mentions] == [NEWER, NEWER_ON_PAGE_2]
    assert [m.author_followers for m in second.mentions] == [48_220, 311]
    page_1, page_2 = searches(httpserver)
    assert page_1["since_id"] == page_2["since_id"] == FIRST
    assert "next_token" not in page_1
    assert page_2["next_token"] == PAGE_2
    assert second.cursor == Cursor(cursor=NEWER)


def test_nothing_new_keeps_the_cursor(httpserver: HTTPServer) -> None:
    serve(httpserver, "empty.json")  # no "data" key at all
    assert poll(httpserver, Cursor(cursor=FIRST)) == PollResult(cursor=Cursor(cursor=FIRST))
    assert poll(httpserver).cursor == Cursor()


def test_pagination_is_bounded(httpserver: HTTPServer) -> None:
    ids = count(int(NEWER) + 1)

    def endless(_: Request) -> Response:
        post_id = str(next(ids))
        page = {"data": [{"id": post_id, "text": "acme"}], "meta": {"next_token": f"t{post_id}"}}
        return Response(json.dumps(page), content_type=JSON)

    httpserver.expect_request(SEARCH).respond_with_handler(endless)
    result = poll(httpserver, Cursor(cursor=NEWER))

    assert len(httpserver.log) == 5
    assert len(result.mentions) == 5
    assert result.cursor == Cursor(cursor=str(int(NEWER) + 5))  # the largest id seen


def test_a_cursor_older_than_the_search_window_is_not_sent(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten days later, FIRST is too old for since_id (X would refuse the request): the posts
    # come unfiltered, and those not newer than the cursor are dropped here.
    monkeypatch.setattr(connectors.x, "utcnow", lambda: datetime(2024, 6, 13, tzinfo=UTC))
    serve(httpserver, "search.json")

    result = poll(httpserver, Cursor(cursor=UNDETERMINED))

    assert "since_id" not in searches(httpserver)[0]
    assert [m.external_id for m in result.mentions] == [FIRST]
    assert result.cursor == Cursor(cursor=FIRST)


# --- rate limits and HTTP failures -------------------------------------------------------------


def test_429_carries_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(
        fixture("rate_limited.json"), status=429, headers={"Retry-After": "120"}
    )
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", 120)


def test_429_without_retry_after_rests_until_the_window_resets(httpserver: HTTPServer) -> None:
    reset = int(time.time()) + 287  # X gives the reset as a Unix time
    httpserver.expect_request(SEARCH).respond_with_data(
        fixture("rate_limited.json"),
        status=429,
        headers={
            "x-rate-limit-limit": "60",
            "x-rate-limit-remaining": "0",
            "x-rate-limit-reset": str(reset),
        },
    )
    error = poll_error(httpserver)
    assert error.kind == "http_429"
    assert error.retry_after is not None and 285 <= error.retry_after <= 290


@pytest.mark.parametrize(("status", "kind"), [(503, "http_5xx"), (401, "http_4xx")])
def test_http_errors(httpserver: HTTPServer, status: int, kind: str) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(
        '{"title": "Unauthorized", "status": 401}', status=status, content_type=JSON
    )
    error = poll_error(httpserver)
    assert error.kind == kind
    assert SEARCH in str(error)


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Something went wrong</html>",
        b"[]",
        b'{"data": {"id": "1"}}',
        b'{"data": ["1797568909931458577"]}',
        b'{"data": [], "includes": {"users": {"id": "1"}}}',
        b'{"data": [], "meta": ["newest_id"]}',
    ],
    ids=["html", "list", "data-object", "data-of-strings", "users-object", "meta-list"],
)
def test_wrong_shape_is_malformed(httpserver: HTTPServer, body: bytes) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(body, content_type=JSON)
    error = poll_error(httpserver)
    assert error.kind == "malformed"
    assert SEARCH in str(error)


# --- credentials -------------------------------------------------------------------------------


def test_missing_bearer_token(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("X_BEARER_TOKEN")
    error = poll_error(httpserver)
    assert error.kind == "auth"
    assert str(error) == "environment variable X_BEARER_TOKEN is not set"
    assert httpserver.log == []


def test_token_comes_from_the_configured_variable(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_X_TOKEN", "other-token")
    serve(httpserver, "empty.json")
    poll(httpserver, bearer_token_env="ACME_X_TOKEN")
    [(request, _)] = httpserver.log
    assert request.headers["Authorization"] == "Bearer other-token"
