"""RedditConnector and HackerNewsConnector against loopback stand-ins for their search APIs."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer

from connectors.base import Connector, Cursor, PollResult, SourceError
from connectors.hackernews import HackerNewsConnector
from connectors.http import make_client
from connectors.reddit import RedditConnector
from monitor.config import HackerNewsSource, RedditSource

FIXTURES = Path(__file__).parent / "fixtures"


def run(connector: Connector, cursor: Cursor | None = None) -> PollResult:
    async def go() -> PollResult:
        async with make_client(timeout=5.0) as client:
            return await connector.poll(client, cursor or Cursor())

    return asyncio.run(go())


def reddit(server: HTTPServer, **options: object) -> RedditConnector:
    config = {"name": "r", "type": "reddit", "query": "crestfield", "base_url": server.url_for("")}
    return RedditConnector(RedditSource.model_validate(config | options))


def hackernews(server: HTTPServer) -> HackerNewsConnector:
    config = {"name": "hn", "type": "hackernews", "query": "quillbox"}
    config["base_url"] = server.url_for("/api/v1")
    return HackerNewsConnector(HackerNewsSource.model_validate(config))


def test_reddit_posts_become_mentions_and_are_not_reported_twice(httpserver: HTTPServer) -> None:
    listing = json.loads((FIXTURES / "reddit/search.json").read_text())
    query = {"q": "crestfield", "sort": "new", "limit": "100", "type": "link", "restrict_sr": "1"}
    httpserver.expect_request("/r/malaysia/search.json", query_string=query).respond_with_json(
        listing
    )
    first = run(reddit(httpserver, subreddit="malaysia"))
    newest = first.mentions[0]
    assert [m.external_id for m in first.mentions] == ["1h2c01a", "1h2bz11", "1h2b9xk"]
    assert newest.text.startswith("Crestfield delivery is getting worse\nOrdered at the Bangsar")
    assert newest.url == (
        "https://www.reddit.com/r/malaysia/comments/1h2c01a/crestfield_delivery_is_getting_worse/"
    )
    assert (newest.author, newest.likes, newest.replies) == ("u/kl_foodie", 128, 41)
    assert newest.author_followers is None and newest.source_type == "reddit"
    assert newest.published_at is not None and newest.published_at.isoformat() == (
        "2024-11-24T09:20:00+00:00"
    )
    assert first.mentions[1].author is None  # a deleted account
    # the next poll sees one new post and the three old ones again
    listing["data"]["children"].insert(
        0,
        {
            "kind": "t3",
            "data": {
                "id": "1h2d777",
                "title": "Crestfield again",
                "created_utc": 1732441000.0,
                "permalink": "/r/malaysia/comments/1h2d777/x/",
                "author": "a",
                "score": 1,
                "num_comments": 0,
            },
        },
    )
    httpserver.clear()
    httpserver.expect_request("/r/malaysia/search.json").respond_with_json(listing)
    again = run(reddit(httpserver, subreddit="malaysia"), first.cursor)
    assert [m.external_id for m in again.mentions] == ["1h2d777"]


@pytest.mark.parametrize(
    ("respond", "kind"),
    [
        (
            lambda r: r.respond_with_data(
                "<html>whoa there, pardner!</html>", content_type="text/html"
            ),
            "malformed",
        ),
        (lambda r: r.respond_with_json({"error": 403, "message": "Forbidden"}), "malformed"),
        (
            lambda r: r.respond_with_json({"kind": "Listing", "data": {"children": "nope"}}),
            "malformed",
        ),
        (lambda r: r.respond_with_data("busy", status=503), "http_5xx"),
        (lambda r: r.respond_with_data("x" * 6_000_000), "too_large"),
    ],
)
def test_reddit_failures_are_clear_errors(httpserver: HTTPServer, respond, kind: str) -> None:  # type: ignore[no-untyped-def]
    respond(httpserver.expect_request("/search.json"))
    with pytest.raises(SourceError) as error:
        run(reddit(httpserver))
    assert error.value.kind == kind


def test_reddit_rate_limit_rests(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/search.json").respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "120"}
    )
    with pytest.raises(SourceError) as limited:
        run(reddit(httpserver))
    assert (limited.value.kind, limited.value.retry_after) == ("http_429", 120)
    httpserver.clear()
    # Reddit's own headers: seconds until the window resets
    httpserver.expect_request("/search.json").respond_with_data(
        "slow down",
        status=429,
        headers={
            "x-ratelimit-remaining": "0.0",
            "x-ratelimit-reset": "287",
            "x-ratelimit-used": "100",
        },
    )
    with pytest.raises(SourceError) as reset:
        run(reddit(httpserver))
    assert reset.value.retry_after == 288  # until the reset, not a fixed minute
    httpserver.clear()
    httpserver.expect_request("/search.json").respond_with_data("slow down", status=429)
    with pytest.raises(SourceError) as unspecified:
        run(reddit(httpserver))
    assert unspecified.value.retry_after == 60  # a minute, as Reddit asks keyless clients


def test_hacker_news_stories_and_comments(httpserver: HTTPServer) -> None:
    hits = json.loads((FIXTURES / "hackernews/search.json").read_text())
    httpserver.expect_request(
        "/api/v1/search_by_date",
        query_string={"query": "quillbox", "tags": "(story,comment)", "hitsPerPage": "100"},
    ).respond_with_json(hits)
    first = run(hackernews(httpserver))
    comment, story, ask = first.mentions
    assert comment.text == (
        "Quillbox's sync lost three months of my notes. Support hasn't replied in 11 days."
    )
    assert comment.url == "https://news.ycombinator.com/item?id=41234999"
    assert (comment.author, comment.likes) == ("pgdev", None)
    assert (story.text, story.likes, story.replies) == ("Quillbox 5 released", 87, 54)
    assert ask.text == (
        "Ask HN: Is Quillbox worth it for a small team?\nWe are five people & mostly write specs."
    )
    assert comment.published_at is not None and comment.published_at.hour == 9

    # the next poll asks only for what is newer, and drops what it already reported
    httpserver.clear()
    newer = {
        "objectID": "41235100",
        "created_at_i": 1732440000,
        "author": "x",
        "comment_text": "Quillbox fixed it, thanks",
    }
    httpserver.expect_request(
        "/api/v1/search_by_date",
        query_string={
            "query": "quillbox",
            "tags": "(story,comment)",
            "hitsPerPage": "100",
            "numericFilters": "created_at_i>=1732439700",
        },
    ).respond_with_json({"hits": [newer, hits["hits"][0]]})
    again = run(hackernews(httpserver), first.cursor)
    assert [m.external_id for m in again.mentions] == ["41235100"]


def test_hacker_news_wrong_shapes_are_malformed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/search_by_date").respond_with_json({"hits": [1, 2]})
    with pytest.raises(SourceError) as error:
        run(hackernews(httpserver))
    assert error.value.kind == "malformed"
