"""XConnector against a loopback stand-in for the X API v2 recent search."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import pytest
from fakes.sources import poll_once, refused
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import connectors.x
from connectors.base import PollResult, SourceError
from connectors.x import XConnector, XSource
from monitor.model import Cursor

FIXTURES = Path(__file__).parent / "fixtures" / "x"
JSON = "application/json; charset=utf-8"
TOKEN = "AAAAAAAAAAAAAAAAAAAAAtest%2Fsecret%2Bbearer%3Dtoken"
SEARCH = "/2/tweets/search/recent"
NOW = datetime(2024, 6, 3, 12, 0, tzinfo=UTC)

FIRST, UNDETERMINED, LONG = "1797568909931458577", "1797564199728066577", "1797556851307458577"
NEWER, NEWER_ON_PAGE_2 = "1797589172614082577", "1797580272300994577"
PAGE_2 = "b26v89c19zqg8o3frr6xo6mybjcq"
REPOST_OF_LONG, QUOTE, REPLY, REPOST_OF_GONE = (
    "1797591559173046849",
    "1797591810831286849",
    "1797592062489526849",
    "1797592314147766849",
)
GONE = "1797538710942646849"  # deleted: X lists it under "errors", not in includes.tweets
BURST = 250  # new posts since FIRST: three pages of up to 100


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
    return poll_once(XConnector(config), cursor)


def poll_error(server: HTTPServer, cursor: Cursor | None = None) -> SourceError:
    return refused(lambda: poll(server, cursor), TOKEN)


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
        "tweet.fields": (
            "created_at,public_metrics,lang,author_id,conversation_id,note_tweet,referenced_tweets"
        ),
        "expansions": "author_id,referenced_tweets.id,referenced_tweets.id.author_id",
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
    assert (second.truncated, second.rest) == (None, None)


def test_nothing_new_keeps_the_cursor(httpserver: HTTPServer) -> None:
    serve(httpserver, "empty.json")  # no "data" key at all
    assert poll(httpserver, Cursor(cursor=FIRST)) == PollResult(cursor=Cursor(cursor=FIRST))
    assert poll(httpserver).cursor == Cursor()


def burst_page(ids: list[int], next_token: str | None) -> bytes:
    """A page of a burst of new posts, each shaped like the first post of ``search.json``."""
    search = json.loads(fixture("search.json"))
    template, author = search["data"][0], search["includes"]["users"][0]
    posts = [
        template
        | {
            "id": str(post_id),
            "edit_history_tweet_ids": [str(post_id)],
            "conversation_id": str(post_id),
            "created_at": connectors.x._posted_at(post_id).isoformat().replace("+00:00", "Z"),
        }
        for post_id in ids
    ]
    meta = {"newest_id": str(ids[0]), "oldest_id": str(ids[-1]), "result_count": len(ids)}
    if next_token:
        meta["next_token"] = next_token
    return json.dumps({"data": posts, "includes": {"users": [author]}, "meta": meta}).encode()


def serve_burst(server: HTTPServer, headers: dict[str, str] | None = None) -> list[str]:
    """``BURST`` posts newer than FIRST, newest first, 100 a page; returns their ids."""
    ids = [int(FIRST) + (n << 32) for n in range(BURST, 0, -1)]  # about a second apart
    pages = {None: (ids[:100], "p2"), "p2": (ids[100:200], "p3"), "p3": (ids[200:], None)}

    def page(request: Request) -> Response:
        assert request.args["since_id"] == FIRST
        chunk, next_token = pages[request.args.get("next_token")]
        return Response(burst_page(chunk, next_token), content_type=JSON, headers=headers)

    server.expect_request(SEARCH).respond_with_handler(page)
    return [str(post_id) for post_id in ids]


def test_a_burst_is_read_back_to_the_last_post_seen(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    ids = serve_burst(httpserver)
    result = poll(httpserver, Cursor(cursor=FIRST))

    assert [m.external_id for m in result.mentions] == ids  # every post, once, newest first
    assert [params.get("next_token") for params in searches(httpserver)] == [None, "p2", "p3"]
    assert result.cursor == Cursor(cursor=ids[0])
    assert (result.truncated, result.rest) == (None, None)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_max_pages_cuts_a_burst_short(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    ids = serve_burst(httpserver)
    result = poll(httpserver, Cursor(cursor=FIRST), max_pages=2)

    assert len(httpserver.log) == 2
    assert [m.external_id for m in result.mentions] == ids[:200]
    assert result.truncated == 100  # at least the page not read
    assert result.cursor == Cursor(cursor=ids[0])
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "source=x-acme" in warning.getMessage()
    assert "max_pages" in warning.getMessage()


def test_pagination_is_bounded(httpserver: HTTPServer) -> None:
    ids = count(int(NEWER) + 1)

    def endless(_: Request) -> Response:
        post_id = str(next(ids))
        page = {"data": [{"id": post_id, "text": "acme"}], "meta": {"next_token": f"t{post_id}"}}
        return Response(json.dumps(page), content_type=JSON)

    httpserver.expect_request(SEARCH).respond_with_handler(endless)
    result = poll(httpserver, Cursor(cursor=NEWER))

    assert len(httpserver.log) == 10  # max_pages' default
    assert len(result.mentions) == 10
    assert result.truncated == 100
    assert result.cursor == Cursor(cursor=str(int(NEWER) + 10))  # the largest id seen


def test_max_pages_is_at_least_one() -> None:
    with pytest.raises(ValueError, match="max_pages"):
        XSource.model_validate({"name": "x", "type": "x", "query": "acme", "max_pages": 0})


def rate_limit(remaining: int, reset_in: int) -> dict[str, str]:
    return {
        "x-rate-limit-limit": "60",
        "x-rate-limit-remaining": str(remaining),
        "x-rate-limit-reset": str(int(time.time()) + reset_in),
    }


def test_a_spent_rate_limit_window_stops_paging_and_asks_for_a_rest(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    ids = serve_burst(httpserver, headers=rate_limit(0, 300))
    result = poll(httpserver, Cursor(cursor=FIRST))

    assert len(httpserver.log) == 1  # the next page would be refused with a 429
    assert [m.external_id for m in result.mentions] == ids[:100]
    assert result.truncated == 100
    assert result.rest is not None and 299 <= result.rest <= 302
    assert result.cursor == Cursor(cursor=ids[0])
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "source=x-acme" in warning.getMessage()
    assert "rate_limit" in warning.getMessage()


def test_a_spent_window_on_the_last_page_asks_for_a_rest_only(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(
        fixture("search.json"), content_type=JSON, headers=rate_limit(0, 120)
    )
    result = poll(httpserver)  # a first poll takes one page

    assert result.truncated is None
    assert result.rest is not None and 119 <= result.rest <= 122


def test_requests_left_in_the_window_ask_for_no_rest(httpserver: HTTPServer) -> None:
    ids = serve_burst(httpserver, headers=rate_limit(57, 600))
    result = poll(httpserver, Cursor(cursor=FIRST))

    assert len(result.mentions) == len(ids)
    assert (result.truncated, result.rest) == (None, None)


def test_a_cursor_older_than_the_search_window_is_not_sent(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ten days later, FIRST is too old for since_id (X would refuse the request): the posts
    # come unfiltered, and those not newer than the cursor are dropped here.
    monkeypatch.setattr(connectors.x, "utcnow", lambda: datetime(2024, 6, 13, tzinfo=UTC))
    serve(httpserver, "search.json")

    result = poll(httpserver, Cursor(cursor=UNDETERMINED))

    # UNDETERMINED is on the first page: paging stops there, although a next_token is offered.
    [search] = searches(httpserver)
    assert "since_id" not in search
    assert [m.external_id for m in result.mentions] == [FIRST]
    assert result.cursor == Cursor(cursor=FIRST)
    assert result.truncated is None


# --- reposts, quotes and replies ---------------------------------------------------------------


def test_a_repost_is_its_reposter_s_post_with_the_original_s_full_text(
    httpserver: HTTPServer,
) -> None:
    serve(httpserver, "references.json")
    mentions = {m.external_id: m for m in poll(httpserver).mentions}
    repost = mentions[REPOST_OF_LONG]

    # The whole note, not the truncated "RT @wile_e: Long thread … a look at…".
    assert repost.text.startswith("RT @wile_e: Long thread on the Acme recall")
    assert repost.text.endswith("bought in 2023. Short answer: no refunds.")
    assert repost.url == f"https://x.com/coyote_fan/status/{REPOST_OF_LONG}"
    assert (repost.author, repost.author_followers) == ("@coyote_fan", 12)
    # X reports the original's 2,400 reposts and 9,800 likes on every repost: not its own.
    assert (repost.likes, repost.reposts, repost.replies, repost.views) == (0, 0, 0, 0)
    assert repost.extra == {
        "retweeted_id": LONG,
        "retweeted_url": f"https://x.com/wile_e/status/{LONG}",
    }
    assert repost.language == "en"
    assert repost.published_at == datetime(2024, 6, 3, 11, 30, tzinfo=UTC)


def test_a_repost_of_a_deleted_post_keeps_its_own_text(httpserver: HTTPServer) -> None:
    serve(httpserver, "references.json")
    mentions = {m.external_id: m for m in poll(httpserver).mentions}
    repost = mentions[REPOST_OF_GONE]

    assert repost.text == (
        "RT @anvil_truth: Acme anvils fall faster than advertised & nobody at Acme will say "
        "why. Thread 🧵"
    )
    assert (repost.author, repost.author_followers) == ("@meep", 1204)
    assert (repost.likes, repost.reposts, repost.replies, repost.views) == (0, 0, 0, 0)
    assert repost.extra == {
        "retweeted_id": GONE,
        "retweeted_url": f"https://x.com/i/web/status/{GONE}",
    }


def test_quotes_and_replies_are_their_authors_own_posts(httpserver: HTTPServer) -> None:
    serve(httpserver, "references.json")
    mentions = {m.external_id: m for m in poll(httpserver).mentions}
    quote, reply = mentions[QUOTE], mentions[REPLY]

    assert (
        quote.text == "This is why I sent mine back. Acme, fix your brakes https://t.co/Qm8RtZp2Lx"
    )
    assert (quote.author, quote.author_followers) == ("@meep", 1204)
    assert (quote.likes, quote.reposts, quote.replies, quote.views) == (6, 1, 2, 388)
    assert quote.extra == {
        "quoted_id": FIRST,
        "quoted_url": f"https://x.com/roadrunner/status/{FIRST}",
    }

    assert reply.text == "@roadrunner @AcmeSupport same here, three weeks and still no refund"
    assert (reply.author, reply.author_followers) == ("@samc", 58)
    assert (reply.likes, reply.reposts, reply.replies, reply.views) == (4, 0, 1, 96)
    assert reply.extra == {
        "replied_to_id": FIRST,
        "replied_to_url": f"https://x.com/roadrunner/status/{FIRST}",
    }
    # The posts they refer to are context, not results: not mentions of their own.
    assert FIRST not in mentions and LONG not in mentions


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
        b'{"data": [], "includes": {"tweets": "1797568909931458577"}}',
        b'{"data": [], "includes": []}',
        b'{"data": [], "meta": ["newest_id"]}',
    ],
    ids=[
        "html",
        "list",
        "data-object",
        "data-of-strings",
        "users-object",
        "tweets-string",
        "includes-list",
        "meta-list",
    ],
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
