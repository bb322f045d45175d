"""RedditConnector and HackerNewsConnector against loopback stand-ins for their search APIs.

Bursts are built from the fixtures' real-shaped posts and hits: each copy differs only in its
id, time and title, so every page is shaped as the service sends it.
"""

from __future__ import annotations

import copy
import json
import logging
from pathlib import Path
from typing import Any

import pytest
from fakes.sources import poll_once
from pydantic import BaseModel, ValidationError
from pytest_httpserver import HTTPServer

from connectors.base import SourceError
from connectors.bluesky import BlueskySource
from connectors.hackernews import HackerNewsConnector, HackerNewsSource
from connectors.mastodon import MastodonSource
from connectors.payload import HighWater
from connectors.reddit import RedditConnector, RedditSource

FIXTURES = Path(__file__).parent / "fixtures"
SEARCH = {"q": "crestfield", "sort": "new", "limit": "100", "type": "link", "raw_json": "1"}
NEWEST_REDDIT = 1732440000.0  # the newest post of reddit/search.json
HN_SEARCH = {"query": "quillbox", "tags": "(story,comment)", "hitsPerPage": "100"}
NEWEST_HN = 1732439700  # the newest hit of hackernews/search.json


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def reddit(server: HTTPServer, **options: object) -> RedditConnector:
    config = {"name": "r", "type": "reddit", "query": "crestfield", "base_url": server.url_for("")}
    return RedditConnector(RedditSource.model_validate(config | options))


def hackernews(server: HTTPServer, **options: object) -> HackerNewsConnector:
    config = {"name": "hn", "type": "hackernews", "query": "quillbox"}
    config["base_url"] = server.url_for("/api/v1")
    return HackerNewsConnector(HackerNewsSource.model_validate(config | options))


# --- Reddit -------------------------------------------------------------------------------


def reddit_burst(size: int) -> list[dict[str, Any]]:
    """``size`` posts newer than the fixture's, newest first, one a second."""
    template = load("reddit/search.json")["data"]["children"][0]
    posts = []
    for n in range(size, 0, -1):
        post = copy.deepcopy(template)
        data, post_id = post["data"], f"1h3{n:04d}"
        slug = f"crestfield_queue_{n}"
        data.update(
            id=post_id,
            name=f"t3_{post_id}",
            title=f"Crestfield queue report {n}",
            created=NEWEST_REDDIT + n,
            created_utc=NEWEST_REDDIT + n,
            permalink=f"/r/malaysia/comments/{post_id}/{slug}/",
            url=f"https://www.reddit.com/r/malaysia/comments/{post_id}/{slug}/",
        )
        posts.append(post)
    return posts


def listing(children: list[dict[str, Any]], after: str | None) -> dict[str, Any]:
    body = load("reddit/search.json")
    body["data"].update(children=children, dist=len(children), after=after)
    return body


def serve_reddit_burst(
    server: HTTPServer, burst: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> None:
    """Reddit's pages of 100 over ``burst`` followed by the posts of the first poll."""
    everything = burst + load("reddit/search.json")["data"]["children"]
    after = None
    for start in range(0, len(everything), 100):
        page = everything[start : start + 100]
        query = SEARCH | ({"after": after} if after else {})
        after = page[-1]["data"]["name"]
        server.expect_request("/search.json", query_string=query).respond_with_json(
            listing(page, after), headers=headers
        )


def test_reddit_posts_become_mentions_and_are_not_reported_twice(httpserver: HTTPServer) -> None:
    body = load("reddit/search.json")
    httpserver.expect_request(
        "/r/malaysia/search.json", query_string=SEARCH | {"restrict_sr": "1"}
    ).respond_with_json(body)
    first = poll_once(reddit(httpserver, subreddit="malaysia"))
    newest = first.mentions[0]
    assert [m.external_id for m in first.mentions] == ["1h2c01a", "1h2bz11", "1h2b9xk"]
    # the subreddit is kept as context; its subscribers are not the author's audience
    assert newest.text.startswith(
        "r/malaysia: Crestfield delivery is getting worse\nOrdered at the Bangsar"
    )
    assert first.mentions[1].text == "r/food: [Homemade] Crestfield-style spicy wings"
    assert newest.url == (
        "https://www.reddit.com/r/malaysia/comments/1h2c01a/crestfield_delivery_is_getting_worse/"
    )
    assert (newest.author, newest.likes, newest.replies) == ("u/kl_foodie", 128, 41)
    assert newest.author_followers is None and newest.source_type == "reddit"
    assert newest.published_at is not None and newest.published_at.isoformat() == (
        "2024-11-24T09:20:00+00:00"
    )
    assert first.mentions[1].author is None  # a deleted account
    assert (first.truncated, first.rest) == (None, None)
    # the next poll sees one new post and the three old ones again
    body["data"]["children"] = reddit_burst(1) + body["data"]["children"]
    httpserver.clear()
    httpserver.expect_request("/r/malaysia/search.json").respond_with_json(body)
    again = poll_once(reddit(httpserver, subreddit="malaysia"), first.cursor)
    assert [m.external_id for m in again.mentions] == ["1h30001"]


def test_reddit_pages_back_through_a_burst_to_the_last_stored_post(
    httpserver: HTTPServer,
) -> None:
    httpserver.expect_request("/search.json", query_string=SEARCH).respond_with_json(
        load("reddit/search.json")
    )
    first = poll_once(reddit(httpserver))
    assert len(first.mentions) == 3
    # 230 posts arrive before the next poll: three pages, the third reaching the stored post
    burst = reddit_burst(230)
    httpserver.clear()
    serve_reddit_burst(httpserver, burst)
    second = poll_once(reddit(httpserver), first.cursor)
    assert [m.external_id for m in second.mentions] == [p["data"]["id"] for p in burst]
    assert (second.truncated, second.rest) == (None, None)
    assert len(httpserver.log) == 3  # the fourth page, after the stored post, is not asked for
    assert HighWater.load(second.cursor.cursor).newest == NEWEST_REDDIT + 230
    # nothing new: the first page reaches the stored posts and the poll stops there
    httpserver.clear()
    serve_reddit_burst(httpserver, burst)
    third = poll_once(reddit(httpserver), second.cursor)
    assert third.mentions == [] and len(httpserver.log) == 1
    every = [m.external_id for poll in (first, second, third) for m in poll.mentions]
    assert len(every) == len(set(every)) == 233


def test_reddit_max_pages_cuts_a_poll_short_and_says_so(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    mark = HighWater(NEWEST_REDDIT, frozenset({"1h2c01a"})).dump()
    burst = reddit_burst(230)
    serve_reddit_burst(httpserver, burst)
    with caplog.at_level(logging.WARNING):
        result = poll_once(reddit(httpserver, max_pages=2), mark)
    assert len(result.mentions) == 200 and result.truncated == 100  # Reddit gives no total
    assert HighWater.load(result.cursor.cursor).newest == NEWEST_REDDIT + 230
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "source=r" in warning and "reason=max_pages" in warning and "missing=100" in warning


def test_reddit_stops_paging_when_its_rate_limit_window_is_spent(httpserver: HTTPServer) -> None:
    mark = HighWater(NEWEST_REDDIT, frozenset({"1h2c01a"})).dump()
    spent = {"x-ratelimit-used": "100", "x-ratelimit-remaining": "0.0", "x-ratelimit-reset": "287"}
    serve_reddit_burst(httpserver, reddit_burst(230), headers=spent)
    result = poll_once(reddit(httpserver), mark)
    assert len(httpserver.log) == 1 and len(result.mentions) == 100
    assert (result.rest, result.truncated) == (288, 100)  # until the reset, in seconds
    # with requests left in the window, it pages on
    httpserver.clear()
    left = {"x-ratelimit-used": "3", "x-ratelimit-remaining": "97.0", "x-ratelimit-reset": "287"}
    serve_reddit_burst(httpserver, reddit_burst(230), headers=left)
    result = poll_once(reddit(httpserver), mark)
    assert len(result.mentions) == 230 and result.rest is None


def test_reddit_links_lose_their_tracking_parameters(httpserver: HTTPServer) -> None:
    body = load("reddit/search.json")
    post = body["data"]["children"][0]["data"]
    post["permalink"] += "?ref=search_posts&utm_source=share&utm_medium=web2x&context=3"
    httpserver.expect_request("/search.json").respond_with_json(body)
    [first, *_] = poll_once(reddit(httpserver)).mentions
    assert first.url == (
        "https://www.reddit.com/r/malaysia/comments/1h2c01a/"
        "crestfield_delivery_is_getting_worse/?context=3"
    )


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
        poll_once(reddit(httpserver))
    assert error.value.kind == kind


def test_reddit_rate_limit_rests(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/search.json").respond_with_data(
        "Too Many Requests", status=429, headers={"Retry-After": "120"}
    )
    with pytest.raises(SourceError) as limited:
        poll_once(reddit(httpserver))
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
        poll_once(reddit(httpserver))
    assert reset.value.retry_after == 288  # until the reset, not a fixed minute
    httpserver.clear()
    httpserver.expect_request("/search.json").respond_with_data("slow down", status=429)
    with pytest.raises(SourceError) as unspecified:
        poll_once(reddit(httpserver))
    assert unspecified.value.retry_after == 60  # a minute, as Reddit asks keyless clients


@pytest.mark.parametrize(
    ("model", "config"),
    [
        (RedditSource, {"type": "reddit", "query": "q"}),
        (HackerNewsSource, {"type": "hackernews", "query": "q"}),
        (MastodonSource, {"type": "mastodon", "instance": "https://m.example", "hashtags": ["q"]}),
        (BlueskySource, {"type": "bluesky", "query": "q"}),
    ],
)
def test_max_pages_defaults_to_ten_and_must_be_at_least_one(
    model: type[BaseModel], config: dict[str, object]
) -> None:
    assert model.model_validate({"name": "s", **config}).model_dump()["max_pages"] == 10
    with pytest.raises(ValidationError, match="max_pages"):
        model.model_validate({"name": "s", **config, "max_pages": 0})


# --- Hacker News --------------------------------------------------------------------------


def hn_burst(size: int) -> list[dict[str, Any]]:
    """``size`` comments newer than the fixture's hits, newest first, one a second."""
    template = load("hackernews/search.json")["hits"][0]
    hits = []
    for n in range(size, 0, -1):
        hit = copy.deepcopy(template)
        hit.update(
            objectID=str(41240000 + n),
            created_at_i=NEWEST_HN + n,
            comment_text=f"Quillbox sync failed again ({n})",
        )
        hits.append(hit)
    return hits


def hn_page(hits: list[dict[str, Any]], page: int, pages: int, total: int) -> dict[str, Any]:
    body = load("hackernews/search.json")
    body.update(hits=hits, page=page, nbPages=pages, nbHits=total)
    return body


def serve_hn_burst(server: HTTPServer, burst: list[dict[str, Any]]) -> int:
    """Algolia's pages of 100 over ``burst`` and the stored newest hit (asked for again: the
    filter is "at or after"); one hit that arrived meanwhile shifts page 1 by one, so its first
    hit repeats the last of page 0.  Returns nbHits."""
    matching = burst + load("hackernews/search.json")["hits"][:1]
    pages = [matching[:100], matching[99:199], matching[199:]]
    query = HN_SEARCH | {"numericFilters": f"created_at_i>={NEWEST_HN}"}
    for number, hits in enumerate(pages):
        paged = query | ({"page": str(number)} if number else {})
        server.expect_request("/api/v1/search_by_date", query_string=paged).respond_with_json(
            hn_page(hits, number, len(pages), len(matching))
        )
    return len(matching)


def test_hacker_news_stories_and_comments(httpserver: HTTPServer) -> None:
    hits = load("hackernews/search.json")
    httpserver.expect_request("/api/v1/search_by_date", query_string=HN_SEARCH).respond_with_json(
        hits
    )
    first = poll_once(hackernews(httpserver))
    comment, story, ask = first.mentions
    # a comment keeps the title and link of the story it answers
    assert comment.text == (
        "Quillbox's sync lost three months of my notes. Support hasn't replied in 11 days.\n"
        "— on “Quillbox 5 released” https://quillbox.example/blog/5"
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
    newer = hn_burst(1)[0] | {
        "comment_text": "Quillbox fixed it, thanks",
        "story_id": 41230000,
        "story_title": "Ask HN: Is Quillbox worth it for a small team?",
        "story_url": None,  # an Ask HN thread links to itself
    }
    httpserver.expect_request(
        "/api/v1/search_by_date",
        query_string=HN_SEARCH | {"numericFilters": f"created_at_i>={NEWEST_HN}"},
    ).respond_with_json(hn_page([newer, hits["hits"][0]], 0, 1, 2))
    again = poll_once(hackernews(httpserver), first.cursor)
    assert [m.text for m in again.mentions] == [
        "Quillbox fixed it, thanks\n— on “Ask HN: Is Quillbox worth it for a small team?” "
        "https://news.ycombinator.com/item?id=41230000"
    ]


def test_hacker_news_pages_back_through_a_burst(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/search_by_date", query_string=HN_SEARCH).respond_with_json(
        load("hackernews/search.json")
    )
    first = poll_once(hackernews(httpserver))
    burst = hn_burst(250)
    httpserver.clear()
    serve_hn_burst(httpserver, burst)
    second = poll_once(hackernews(httpserver), first.cursor)
    # every hit once, though page 1 repeated the last hit of page 0
    assert [m.external_id for m in second.mentions] == [h["objectID"] for h in burst]
    assert second.truncated is None and len(httpserver.log) == 3
    assert HighWater.load(second.cursor.cursor).newest == NEWEST_HN + 250


def test_hacker_news_max_pages_reports_what_nb_hits_says_is_left(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    mark = HighWater(NEWEST_HN, frozenset({"41234999"})).dump()
    total = serve_hn_burst(httpserver, hn_burst(250))
    with caplog.at_level(logging.WARNING):
        result = poll_once(hackernews(httpserver, max_pages=2), mark)
    assert len(result.mentions) == 199  # one hit was on both pages
    assert result.truncated == total - 200 == 51
    assert any("missing=51" in r.getMessage() for r in caplog.records)


def test_hacker_news_wrong_shapes_are_malformed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/api/v1/search_by_date").respond_with_json({"hits": [1, 2]})
    with pytest.raises(SourceError) as error:
        poll_once(hackernews(httpserver))
    assert error.value.kind == "malformed"
