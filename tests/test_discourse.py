"""DiscourseConnector against a loopback stand-in for a Discourse forum's search and posts.

Bursts are built from the fixture's real-shaped search results: each copy differs only in its
id, time and blurb, and the stand-in pages them 50 at a time as Discourse does.
"""

from __future__ import annotations

import copy
import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes.sources import poll_once, refused
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.base import PollResult, SourceError
from connectors.discourse import DiscourseConnector, DiscourseSource
from monitor.config import ConfigError, parse_config
from monitor.model import Cursor

FIXTURES = Path(__file__).parent / "fixtures" / "discourse"
JSON = "application/json; charset=utf-8"
SEARCH = "/forum/search.json"
API_KEY = "d7c1f0e5b2a94c3e8f61a0b7c9d2e4f6a8b0c1d3e5f7a9b1c3d5e7f9a1b3c5d7"
NEWEST = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)  # the newest post of search.json


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def load(name: str) -> Any:
    return json.loads(fixture(name))


def connector(server: HTTPServer, **options: object) -> DiscourseConnector:
    config = {
        "name": "crestfield-forum",
        "type": "discourse",
        "base_url": server.url_for("/forum"),
        "query": "crestfield",
    }
    return DiscourseConnector(DiscourseSource.model_validate(config | options))


def poll(server: HTTPServer, cursor: Cursor | None = None, **options: object) -> PollResult:
    return poll_once(connector(server, **options), cursor)


def poll_error(server: HTTPServer, **options: object) -> SourceError:
    return refused(lambda: poll(server, **options), API_KEY)


def serve_fixture(server: HTTPServer) -> None:
    server.expect_request(SEARCH).respond_with_data(fixture("search.json"), content_type=JSON)
    server.expect_request("/forum/posts/90398.json").respond_with_data(
        fixture("post_90398.json"), content_type=JSON
    )
    server.expect_request("/forum/posts/90350.json").respond_with_data(
        fixture("post_not_found.json"), status=404, content_type=JSON
    )


def paths(server: HTTPServer) -> list[str]:
    return [request.path for request, _ in server.log]


def stored_mark(cursor: Cursor) -> tuple[float, list[str]]:
    """The newest time and the ids seen at it, from a cursor."""
    stored = json.loads(cursor.cursor or "{}")
    return stored["newest"], stored["ids"]


# --- what a poll finds -------------------------------------------------------------------------


def test_posts_are_normalised(httpserver: HTTPServer) -> None:
    serve_fixture(httpserver)
    result = poll(httpserver)

    opening, reply, question, deleted = result.mentions
    assert [m.external_id for m in result.mentions] == ["90412", "90398", "90377", "90350"]
    assert {m.source for m in result.mentions} == {"crestfield-forum"}
    assert {m.source_type for m in result.mentions} == {"discourse"}

    # The first post of a topic starts with its title.
    assert opening.text == (
        "Crestfield app keeps logging me out\nSince the last update the Crestfield app logs me "
        "out every time I open the rewards page. Reinstalling did not help."
    )
    base = httpserver.url_for("/forum")
    assert opening.url == f"{base}/t/crestfield-app-keeps-logging-me-out/18230/1"
    assert opening.author == "@aisyah"
    assert opening.likes == 7
    assert opening.author_followers is None
    assert opening.language is None
    assert opening.published_at == NEWEST
    assert opening.extra == {"topic_id": "18230", "post_number": "1", "category_id": "5"}

    # A cut blurb is replaced by the whole post; a reply ends with its topic's title.
    assert reply.text == (
        "Same here. I paid twice for the same order and Crestfield support closed my ticket "
        "without a refund. I have the bank statement & the receipt, what else do they want?\n"
        "— on “Double charged on delivery orders”"
    )
    assert reply.url == f"{base}/t/double-charged-on-delivery-orders/18197/6"
    assert reply.published_at == datetime(2024, 6, 3, 9, 41, 12, 348000, tzinfo=UTC)

    assert question.text == (
        "Does the Crestfield Bangsar outlet still do breakfast?\n— on “Breakfast menu”"
    )

    # A post that cannot be read any more (404) keeps its blurb.
    assert deleted.text == "Crestfield 的外卖又迟到了…\n— on “外卖”"
    assert deleted.url == f"{base}/t/topic/17990/2"

    assert stored_mark(result.cursor) == (NEWEST.timestamp(), ["90412"])
    assert (result.truncated, result.rest) == (None, None)


def test_requests_of_a_first_poll(httpserver: HTTPServer) -> None:
    serve_fixture(httpserver)
    poll(httpserver)

    # One page only, although there are more; the two cut blurbs are read whole.
    assert paths(httpserver) == [SEARCH, "/forum/posts/90398.json", "/forum/posts/90350.json"]
    search = httpserver.log[0][0]
    assert dict(search.args) == {"q": "crestfield order:latest"}
    assert "Api-Key" not in search.headers


def test_whole_posts_are_bounded(httpserver: HTTPServer) -> None:
    serve_fixture(httpserver)
    mentions = poll(httpserver, max_full_posts=1).mentions

    assert paths(httpserver) == [SEARCH, "/forum/posts/90398.json"]
    assert mentions[3].text == "Crestfield 的外卖又迟到了…\n— on “外卖”"

    httpserver.clear_log()
    mentions = poll(httpserver, max_full_posts=0).mentions
    assert paths(httpserver) == [SEARCH]
    # The blurb, as text: the highlight dropped, the entity decoded.
    assert mentions[1].text.startswith(
        "...paid twice for the same order and Crestfield support closed my ticket without a "
        "refund. I have the bank statement & the receipt"
    )


def test_a_private_forum_gets_the_api_key(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CRESTFIELD_FORUM_KEY", API_KEY)
    serve_fixture(httpserver)
    poll(httpserver, api_key_env="CRESTFIELD_FORUM_KEY", api_username="brandmon")

    for request, _ in httpserver.log:  # the search and the whole posts
        assert request.headers["Api-Key"] == API_KEY
        assert request.headers["Api-Username"] == "brandmon"


def test_a_missing_api_key_is_an_auth_error(httpserver: HTTPServer) -> None:
    error = poll_error(httpserver, api_key_env="CRESTFIELD_FORUM_KEY", api_username="brandmon")
    assert (error.kind, str(error)) == (
        "auth",
        "environment variable CRESTFIELD_FORUM_KEY is not set",
    )
    assert httpserver.log == []


class Forum:
    """A forum whose search finds ``posts`` (newest first), 50 a page."""

    def __init__(self, posts: list[dict[str, Any]]) -> None:
        self.posts = posts
        self.topics = load("search.json")["topics"]

    def __call__(self, request: Request) -> Response:
        assert request.args["q"] == "crestfield order:latest"
        page = int(request.args.get("page", "1"))
        chunk = self.posts[(page - 1) * 50 : page * 50]
        body = load("empty.json")
        body["posts"], body["topics"] = chunk, self.topics
        grouped = body["grouped_search_result"]
        grouped["post_ids"] = [post["id"] for post in chunk]
        grouped["more_full_page_results"] = True if page * 50 < len(self.posts) else None
        return Response(json.dumps(body), content_type=JSON)


def burst(size: int) -> list[dict[str, Any]]:
    """``size`` replies newer than the fixture's posts, newest first, a second apart."""
    template = load("search.json")["posts"][2]
    posts = []
    for n in range(size, 0, -1):
        post = copy.deepcopy(template)
        created = NEWEST + timedelta(seconds=n)
        post.update(
            id=91000 + n,
            created_at=created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            blurb=f"Crestfield queue report {n}",
        )
        posts.append(post)
    return posts


def test_a_burst_is_read_back_to_the_last_post_seen_and_not_again(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    serve_fixture(httpserver)
    first = poll(httpserver)
    httpserver.clear()

    new = burst(120)
    httpserver.expect_request(SEARCH).respond_with_handler(
        Forum(new + load("search.json")["posts"])
    )
    second = poll(httpserver, first.cursor)

    assert [request.args.get("page") for request, _ in httpserver.log] == [None, "2", "3"]
    assert [m.external_id for m in second.mentions] == [str(post["id"]) for post in new]
    assert stored_mark(second.cursor) == ((NEWEST + timedelta(seconds=120)).timestamp(), ["91120"])
    assert second.truncated is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    third = poll(httpserver, second.cursor)
    assert third.mentions == []
    assert third.cursor == second.cursor


def test_max_pages_cuts_a_burst_short(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    new = burst(120)
    httpserver.expect_request(SEARCH).respond_with_handler(
        Forum(new + load("search.json")["posts"])
    )
    cursor = Cursor(cursor=json.dumps({"newest": NEWEST.timestamp(), "ids": ["90412"]}))
    result = poll(httpserver, cursor, max_pages=2)

    assert len(httpserver.log) == 2
    assert len(result.mentions) == 100
    assert result.truncated == 50
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "source=crestfield-forum" in warning.getMessage()
    assert "max_pages" in warning.getMessage()


def test_nothing_found(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(fixture("empty.json"), content_type=JSON)
    result = poll(httpserver)
    assert (result.mentions, result.cursor.cursor) == ([], json.dumps({"newest": 0.0, "ids": []}))


# --- configuration -----------------------------------------------------------------------------


BAD_CONFIG = """
[[brands]]
name = "Crestfield"
keywords = ["crestfield"]

[[sources]]
name = "forum"
type = "discourse"
base_url = "https://community.crestfield.example"
query = "crestfield"
max_pages = 11
"""


def test_check_config_names_the_line_of_a_bad_setting() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BAD_CONFIG, "brandmon.toml")
    [problem] = [str(p) for p in caught.value.problems]
    assert problem.startswith("brandmon.toml:11: sources[0].max_pages:")


def test_an_api_key_needs_its_user() -> None:
    with pytest.raises(ValueError, match="api_username"):
        DiscourseSource.model_validate(
            {
                "name": "forum",
                "type": "discourse",
                "base_url": "https://community.crestfield.example",
                "query": "crestfield",
                "api_key_env": "FORUM_KEY",
            }
        )


# --- rate limits and refusals ------------------------------------------------------------------


def test_429_with_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(
        fixture("rate_limited.json"), status=429, content_type=JSON, headers={"Retry-After": "42"}
    )
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", 42.0)
    assert len(httpserver.log) == 1


def test_429_without_retry_after_waits_as_the_body_says(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(
        fixture("rate_limited.json"), status=429, content_type=JSON
    )
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", 42.0)


def test_a_search_refused_with_a_200_rests_a_minute(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(
        fixture("search_refused.json"), content_type=JSON
    )
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", 60.0)
    assert "too many times" in str(error)


def test_a_429_while_reading_whole_posts_keeps_the_blurbs(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(fixture("search.json"), content_type=JSON)
    httpserver.expect_request("/forum/posts/90398.json").respond_with_data(
        fixture("rate_limited.json"), status=429, content_type=JSON, headers={"Retry-After": "30"}
    )
    result = poll(httpserver)

    assert paths(httpserver) == [SEARCH, "/forum/posts/90398.json"]  # no more after the 429
    assert len(result.mentions) == 4
    assert result.mentions[1].text.startswith("...paid twice")
    assert result.rest == 30.0


def test_a_private_forum_without_a_key_is_an_auth_error(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(
        fixture("forbidden.json"), status=403, content_type=JSON
    )
    error = poll_error(httpserver)
    assert error.kind == "auth"
    assert "api_key_env" in str(error)


def test_server_errors_pass_through(httpserver: HTTPServer) -> None:
    httpserver.expect_request(SEARCH).respond_with_data("<h1>502</h1>", status=502)
    assert poll_error(httpserver).kind == "http_5xx"


@pytest.mark.parametrize(
    "body",
    [
        b"<html>Discourse is being upgraded</html>",
        b"[]",
        b'{"posts": {"id": 1}}',
        b'{"posts": [90412]}',
        b'{"posts": [], "topics": "18230"}',
    ],
    ids=["html", "list", "posts-object", "posts-of-ids", "topics-string"],
)
def test_wrong_shape_is_malformed(httpserver: HTTPServer, body: bytes) -> None:
    httpserver.expect_request(SEARCH).respond_with_data(body, content_type=JSON)
    error = poll_error(httpserver)
    assert error.kind == "malformed"
    assert SEARCH in str(error)
