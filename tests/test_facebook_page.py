"""FacebookPageConnector, and the Graph API layer it shares with Instagram (connectors.graph),
against a stand-in Graph API on a loopback server (``tests/fakes/graph.py``)."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from pathlib import Path

import httpx
import pytest
from fakes.graph import BASE, FakeGraph, Reply
from pydantic import ValidationError

from connectors.base import PollResult, SourceError
from connectors.facebook_page import FacebookPageConnector, FacebookPageSource
from connectors.graph import HIGH_USAGE_REST, next_query, usage_rest
from monitor.config import parse_config
from monitor.model import Cursor
from monitor.plugins import connector_class

FIXTURES = Path(__file__).parent / "fixtures" / "facebook_page"
TOKEN = "EAAGtestPageToken0123456789SECRETabcdef"
PAGE = "100200300"


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FACEBOOK_PAGE_TOKEN", TOKEN)


@pytest.fixture
def graph() -> FakeGraph:
    return FakeGraph(FIXTURES)


def connector(**options: object) -> FacebookPageConnector:
    config = FacebookPageSource.model_validate(
        {"name": "fb-acme", "type": "facebook_page", "page_id": PAGE, "base_url": BASE} | options
    )
    return FacebookPageConnector(config)


def serve_all(graph: FakeGraph) -> FakeGraph:
    return (
        graph.on(PAGE, "page.json")
        .on(f"{PAGE}/feed", "feed.json")
        .on(f"{PAGE}/tagged", "tagged.json")
        .on(f"{PAGE}/ratings", "ratings.json")
    )


def poll_error(graph: FakeGraph, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        graph.run(connector(**options))
    assert TOKEN not in str(caught.value)
    return caught.value


def by_id(result: PollResult) -> dict[str, object]:
    return {mention.external_id: mention for mention in result.mentions}


# --- what a poll finds -------------------------------------------------------------------------


def test_visitors_posts_comments_and_replies_are_normalised(graph: FakeGraph) -> None:
    result = serve_all(graph).run(connector(read=["feed"]))

    # The Page's own post and comment are the brand speaking; a post or comment without words
    # (a photo, a sticker) and an entry without an id make no mention.
    assert [m.external_id for m in result.mentions] == [
        "fb:100200300_501",
        "fb-comment:501_9003",
        "fb-comment:501_9001",
        "fb-comment:502_9011",
    ]
    post, reply, comment, on_own_post = result.mentions
    assert {m.source for m in result.mentions} == {"fb-acme"}
    assert {m.source_type for m in result.mentions} == {"facebook_page"}

    assert post.url == "https://www.facebook.com/100200300/posts/pfbid0Visitor501"
    assert post.text.startswith("Ordered from Acme Foods on Friday")
    assert post.text.endswith("nobody answers the phone.\n— on Acme Foods's Page")
    assert post.author == "Jane Roe"
    assert (post.likes, post.reposts, post.replies) == (37, 4, 3)
    assert post.published_at is not None and post.published_at.isoformat() == (
        "2024-06-03T10:00:00+00:00"
    )
    assert post.extra == {"page_id": PAGE, "edge": "feed"}

    # Comments carry the Page's name, so they match the brand, and link to themselves.
    assert reply.text == "Same here, two hours and no food\n— on Acme Foods's post"
    assert reply.url.endswith("?comment_id=9001&reply_comment_id=9003")
    assert reply.extra["parent_id"] == "501_9001"
    assert reply.extra["post_url"] == post.url
    assert (comment.author, comment.likes, comment.replies) == ("Ann Poe", 5, 1)
    assert "parent_id" not in comment.extra
    # Without a permalink_url, a comment links to its post opened at it.
    assert on_own_post.url == (
        "https://www.facebook.com/100200300/posts/pfbid0Menu502?comment_id=9011"
    )


def test_request_uses_the_header_for_the_token_and_asks_for_comments_of_every_level(
    graph: FakeGraph,
) -> None:
    serve_all(graph).run(connector())

    assert graph.paths() == [PAGE, f"{PAGE}/feed", f"{PAGE}/tagged", f"{PAGE}/ratings"]
    for request in graph.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert "access_token" not in request.url.params
        assert TOKEN not in str(request.url)
    [feed] = graph.asked(f"{PAGE}/feed")
    fields = feed.url.params["fields"]
    assert "permalink_url" in fields
    assert "comments.filter(stream).order(reverse_chronological).limit(50)" in fields
    assert feed.url.params["limit"] == "25"
    assert "after" not in feed.url.params
    [about] = graph.asked(PAGE)
    assert about.url.params["fields"] == "name"


def test_tagged_posts_are_mentions(graph: FakeGraph) -> None:
    result = serve_all(graph).run(connector(read=["tagged"]))

    [tagged] = result.mentions
    assert tagged.external_id == "fb:8100_601"
    assert tagged.url == "https://www.facebook.com/8100/posts/pfbid0Tagged601"
    assert tagged.author == "Gus Zoe"
    assert tagged.text == "Lunch at Acme Foods with the team, great burgers\n— tags Acme Foods"
    assert tagged.extra["edge"] == "tagged"


def test_recommendations_become_stars_and_name_the_page(graph: FakeGraph) -> None:
    result = serve_all(graph).run(connector(read=["ratings"]))

    negative, positive, legacy = result.mentions
    # "Doesn't recommend" is 1 star: negative whatever the words; "recommends" is 5.
    assert (negative.rating, negative.extra["recommendation"]) == (1, "negative")
    assert negative.text == "— review of Acme Foods"  # no words of its own: still matched
    assert negative.url == "https://www.facebook.com/9900001"
    assert negative.external_id == "fb-rating:9900001"
    assert negative.author == "Hal Yoe"
    assert (positive.rating, positive.text) == (
        5,
        "Best pizza in town, but the wait was long\n— review of Acme Foods",
    )
    # A review from the days of stars keeps them; without a story it has no link, and an id
    # made of what it is.
    assert (legacy.rating, legacy.url) == (2, None)
    assert legacy.external_id.startswith("fb-rating:") and len(legacy.external_id) == 42
    again = FakeGraph(FIXTURES)
    assert serve_all(again).run(connector(read=["ratings"])).mentions[2].external_id == (
        legacy.external_id
    )


def test_the_next_poll_reports_only_what_is_new(graph: FakeGraph) -> None:
    first = serve_all(graph).run(connector(read=["feed", "ratings"]))
    state = json.loads(first.cursor.cursor or "")
    assert state["page_name"] == "Acme Foods"

    later = FakeGraph(FIXTURES).on(f"{PAGE}/feed", "feed_newer.json", "feed_older.json")
    later.on(f"{PAGE}/ratings", "ratings.json")
    result = later.run(connector(read=["feed", "ratings"]), first.cursor)

    # The new post and the new comment on an old post; the page's name is not asked again, and
    # the feed is paged back (with the ``after`` cursor) until it reaches the newest post seen.
    assert [m.external_id for m in result.mentions] == ["fb:100200300_504", "fb-comment:501_9004"]
    assert later.paths() == [f"{PAGE}/feed", f"{PAGE}/feed", f"{PAGE}/ratings"]
    second_page = later.asked(f"{PAGE}/feed")[1]
    assert second_page.url.params["after"] == "QVFIUm5ld2VyMg"
    assert second_page.url.host == httpx.URL(BASE).host  # ours, not paging.next's host
    assert result.truncated is None and result.rest is None

    # Polled once more with nothing new: nothing is reported twice.
    again = FakeGraph(FIXTURES).on(f"{PAGE}/feed", "feed_newer.json", "feed_older.json")
    again.on(f"{PAGE}/ratings", "ratings.json")
    assert again.run(connector(read=["feed", "ratings"]), result.cursor).mentions == []


def test_a_burst_longer_than_max_pages_is_reported_truncated(
    graph: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    cursor = Cursor(
        cursor=json.dumps({"page_name": "Acme Foods", "posts": {"newest": 1.0, "ids": []}})
    )
    graph.on(f"{PAGE}/feed", "feed.json")  # every post newer than the mark, page after page
    with caplog.at_level(logging.WARNING):
        result = graph.run(connector(read=["feed"], max_pages=3), cursor)

    assert len(graph.asked(f"{PAGE}/feed")) == 3
    assert result.truncated == 25
    assert "poll cut short source=fb-acme" in caplog.text and "reason=max_pages" in caplog.text


def test_a_first_poll_reads_one_page(graph: FakeGraph) -> None:
    serve_all(graph).run(connector(read=["feed"]))
    assert len(graph.asked(f"{PAGE}/feed")) == 1


# --- usage and rate limits ---------------------------------------------------------------------


def test_high_app_usage_stops_paging_and_rests(graph: FakeGraph) -> None:
    cursor = Cursor(
        cursor=json.dumps({"page_name": "Acme Foods", "posts": {"newest": 1.0, "ids": []}})
    )
    busy = {"x-app-usage": '{"call_count":91,"total_cputime":40,"total_time":35}'}
    graph.on(f"{PAGE}/feed", "feed.json", headers=busy)
    result = graph.run(connector(), cursor)

    # One page, then no more requests at all: the tagged posts and ratings wait.
    assert graph.paths() == [f"{PAGE}/feed"]
    assert result.rest == HIGH_USAGE_REST
    assert result.truncated == 25
    assert len(result.mentions) == 4


def test_business_use_case_estimate_is_the_rest(graph: FakeGraph) -> None:
    usage = {
        PAGE: [
            {
                "type": "pages",
                "call_count": 12,
                "total_cputime": 8,
                "total_time": 9,
                "estimated_time_to_regain_access": 7,
            }
        ]
    }
    serve_all(graph).on(PAGE, "page.json", headers={"x-business-use-case-usage": json.dumps(usage)})
    graph.routes[PAGE] = graph.routes[PAGE][1:]  # the busy answer only
    result = graph.run(connector())
    assert result.rest == 7 * 60
    assert graph.paths() == [PAGE]


def test_usage_headers_are_read_defensively() -> None:
    def rest(**headers: str) -> float | None:
        return usage_rest(httpx.Headers(headers))

    assert rest() is None
    assert rest(**{"x-app-usage": '{"call_count":89,"total_cputime":89,"total_time":89}'}) is None
    assert rest(**{"x-page-usage": '{"call_count":5,"total_cputime":95,"total_time":5}'}) == (
        HIGH_USAGE_REST
    )
    for garbage in ("not json", "[1,2]", '{"call_count":"99"}', '{"x":[{"call_count":true}]}'):
        assert rest(**{"x-app-usage": garbage}) is None
    usage = {"1": [{"call_count": 99}], "2": [{"estimated_time_to_regain_access": 30}]}
    assert rest(**{"x-business-use-case-usage": json.dumps(usage)}) == 30 * 60


def test_a_rate_limit_after_part_of_the_poll_keeps_that_part(graph: FakeGraph) -> None:
    serve_all(graph).on(f"{PAGE}/tagged", "page_rate_limit.json", status=400)
    graph.routes[f"{PAGE}/tagged"] = graph.routes[f"{PAGE}/tagged"][1:]
    result = graph.run(connector())

    # The feed was read; the tagged posts hit the Page's limit; the ratings wait.
    assert graph.paths() == [PAGE, f"{PAGE}/feed", f"{PAGE}/tagged"]
    assert len(result.mentions) == 4
    assert result.rest == HIGH_USAGE_REST
    state = json.loads(result.cursor.cursor or "")
    assert "posts" in state and "tagged" not in state and "ratings" not in state


def test_a_rate_limit_before_anything_was_read_is_raised(graph: FakeGraph) -> None:
    usage = {"x-app-usage": '{"call_count":100,"total_cputime":3,"total_time":3}'}
    graph.on(PAGE, "page_rate_limit.json", status=403, headers=usage)
    error = poll_error(graph)
    assert error.kind == "http_429"
    assert error.retry_after == HIGH_USAGE_REST
    assert "code 32" in str(error) and "fbtrace_id A1b2C3d4E5f" in str(error)


def test_a_business_use_case_throttle_rests_as_long_as_meta_estimates(graph: FakeGraph) -> None:
    usage = {PAGE: [{"type": "pages", "call_count": 100, "estimated_time_to_regain_access": 12}]}
    body = {"error": {"message": "User request limit reached", "code": 80001, "fbtrace_id": "B"}}
    graph.routes[PAGE] = [
        Reply(json.dumps(body).encode(), 400, {"x-business-use-case-usage": json.dumps(usage)})
    ]
    error = poll_error(graph)
    assert (error.kind, error.retry_after) == ("http_429", 12 * 60)


# --- refusals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "status", "kind", "words"),
    [
        ("token_expired.json", 400, "auth", "invalid or has expired"),
        ("permission.json", 403, "auth", "lacks a permission"),
        ("unknown_object.json", 400, "http_4xx", "subcode 33"),
        ("unavailable.json", 500, "http_5xx", "code 2"),
    ],
)
def test_graph_errors_are_told_by_their_code(
    graph: FakeGraph, fixture: str, status: int, kind: str, words: str
) -> None:
    graph.on(PAGE, fixture, status=status)
    error = poll_error(graph)
    assert error.kind == kind
    assert words in str(error)
    assert f"HTTP {status} from {BASE}/{PAGE}:" in str(error)


def test_an_error_quoting_the_token_does_not_repeat_it(graph: FakeGraph) -> None:
    body = {"error": {"message": f"Malformed access token {TOKEN}", "code": 190}}
    graph.routes[PAGE] = [Reply(json.dumps(body).encode(), 400)]
    error = poll_error(graph)
    assert "Malformed access token [token]" in str(error)


def test_an_answer_that_is_not_a_graph_error(graph: FakeGraph) -> None:
    graph.routes[PAGE] = [Reply(b"<html>Bad gateway</html>", 502)]
    assert poll_error(graph).kind == "http_5xx"
    graph.routes[PAGE] = [Reply(b"<html>slow down</html>", 429, {"Retry-After": "120"})]
    error = poll_error(graph)
    assert (error.kind, error.retry_after) == ("http_429", 120)
    graph.routes[PAGE] = [Reply(b"not json", 200)]
    assert poll_error(graph).kind == "malformed"
    graph.routes[PAGE] = [Reply(b'{"name": "Acme"}', 200)]
    graph.routes[f"{PAGE}/feed"] = [Reply(b'{"data": {"id": "1"}}', 200)]
    assert poll_error(graph, read=["feed"]).kind == "malformed"


def test_a_missing_token_is_an_auth_error(
    graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FACEBOOK_PAGE_TOKEN")
    error = poll_error(graph)
    assert (error.kind, str(error)) == (
        "auth",
        "environment variable FACEBOOK_PAGE_TOKEN is not set",
    )
    assert graph.requests == []


def test_app_secret_proof_when_the_app_requires_it(
    graph: FakeGraph, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FACEBOOK_APP_SECRET", "s3cret")
    serve_all(graph).run(connector(read=["feed"], app_secret_env="FACEBOOK_APP_SECRET"))
    expected = hmac.new(b"s3cret", TOKEN.encode(), hashlib.sha256).hexdigest()
    assert {r.url.params["appsecret_proof"] for r in graph.requests} == {expected}
    monkeypatch.delenv("FACEBOOK_APP_SECRET")
    assert poll_error(graph, app_secret_env="FACEBOOK_APP_SECRET").kind == "auth"


# --- paging ------------------------------------------------------------------------------------


def test_next_query_keeps_our_parameters_and_takes_only_the_position() -> None:
    params = {"fields": "id,message", "limit": "25"}
    after = {"paging": {"cursors": {"after": "QQ"}, "next": "https://elsewhere.test/x?after=QQ"}}
    assert next_query(after, params) == {**params, "after": "QQ"}
    timed = {
        "paging": {
            "next": "https://graph.facebook.com/v21.0/1/feed?access_token=LEAK&limit=99"
            "&until=1717400000&__paging_token=enc_AbC"
        }
    }
    assert next_query(timed, params) == {
        **params,
        "until": "1717400000",
        "__paging_token": "enc_AbC",
    }
    assert next_query({"paging": {"cursors": {"after": "QQ"}}}, params) is None  # no next
    assert next_query({"paging": {"next": "https://x.test/?foo=1"}}, params) is None
    assert next_query({"paging": "garbage"}, params) is None


# --- configuration -----------------------------------------------------------------------------


def test_config_is_checked_and_registered() -> None:
    assert connector_class("facebook_page") is FacebookPageConnector
    text = f"""
[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
type = "facebook_page"
name = "fb"
page_id = "{PAGE}"
read = ["feed", "ratings"]
"""
    config = parse_config(text, "brandmon.toml")
    [source] = config.sources
    assert isinstance(source, FacebookPageSource)
    assert source.base_url == "https://graph.facebook.com/v21.0"
    assert config.source_secrets() == [("fb", "token_env", "FACEBOOK_PAGE_TOKEN")]
    for bad in ({"page_id": "acme/../../me"}, {"read": ["inbox"]}, {"read": []}):
        with pytest.raises(ValidationError):
            connector(**bad)
