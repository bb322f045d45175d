"""YouTubeConnector against a loopback stand-in for the YouTube Data API v3."""

from __future__ import annotations

import asyncio
import socket
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.base import Cursor, PollResult, SourceError
from connectors.http import make_client
from connectors.youtube import YouTubeConnector
from monitor.config import YouTubeSource

FIXTURES = Path(__file__).parent / "fixtures" / "youtube"
JSON = "application/json; charset=UTF-8"
KEY = "AIzaSyTEST-SECRET-0123456789abcdefghij"
API = "/youtube/v3"

REVIEW, ANKLE, UNBOXING, GONE, RECALL = (
    "k3Y8sQm1pLw",  # comments
    "Zr9vT2nQe0A",  # comments disabled, hidden subscriber count
    "p0Lk7HcX4bE",  # no comments yet
    "Qw5Jd8uYt1R",  # in the search results, but gone by the videos.list call
    "Mn2Bv6Cx8Za",  # the new video of the second poll
)
GADGET, SKATE, GONE_CHANNEL = (
    "UCgadgetReviews000000000",
    "UCskateTalk0000000000000",
    "UCgoneChannel00000000000",
)


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOUTUBE_API_KEY", KEY)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def poll(server: HTTPServer, cursor: Cursor | None = None, **options: object) -> PollResult:
    config = YouTubeSource.model_validate(
        {"name": "yt", "type": "youtube", "query": "acme skates", "base_url": server.url_for(API)}
        | options
    )

    async def run() -> PollResult:
        async with make_client(timeout=5.0) as client:
            return await YouTubeConnector(config).poll(client, cursor or Cursor())

    return asyncio.run(run())


def poll_error(server: HTTPServer, **options: object) -> SourceError:
    with pytest.raises(SourceError) as caught:
        poll(server, **options)
    assert KEY not in str(caught.value)
    return caught.value


def respond(server: HTTPServer, endpoint: str, name: str, *, once: bool = False) -> None:
    expect = server.expect_oneshot_request if once else server.expect_request
    expect(f"{API}/{endpoint}").respond_with_data(fixture(name), content_type=JSON)


def comment_threads(request: Request) -> Response:
    if request.args["videoId"] == REVIEW:
        return Response(fixture("comment_threads.json"), content_type=JSON)
    if request.args["videoId"] == ANKLE:
        return Response(fixture("comments_disabled.json"), status=403, content_type=JSON)
    return Response('{"kind": "youtube#commentThreadListResponse", "items": []}', content_type=JSON)


def serve(server: HTTPServer) -> None:
    respond(server, "search", "search.json")
    respond(server, "videos", "videos.json")
    respond(server, "channels", "channels.json")
    server.expect_request(f"{API}/commentThreads").respond_with_handler(comment_threads)


def requests(server: HTTPServer, endpoint: str) -> list[dict[str, str]]:
    """The query parameters of every request the server saw for one endpoint."""
    return [dict(request.args) for request, _ in server.log if request.path == f"{API}/{endpoint}"]


# --- what a poll finds -------------------------------------------------------------------------


def test_videos_and_their_comments(httpserver: HTTPServer) -> None:
    serve(httpserver)
    result = poll(httpserver)

    assert [m.external_id for m in result.mentions] == [
        f"yt:{REVIEW}",
        "yt-comment:UgxKREWxIgDrw8w2e_Z4AaABAg",
        "yt-comment:UgyZ9pQxLm3nT5vR1wK4AaABAg",  # the thread without an id is skipped
        f"yt:{ANKLE}",  # comments disabled: the poll goes on
        f"yt:{UNBOXING}",
        f"yt:{GONE}",  # the search result without a videoId is skipped
    ]
    review, first, second, ankle, unboxing, gone = result.mentions
    assert {m.source for m in result.mentions} == {"yt"}
    assert {m.source_type for m in result.mentions} == {"youtube"}

    assert review.url == f"https://www.youtube.com/watch?v={REVIEW}"
    # Title and the full description from videos.list, not the shortened search snippet.
    assert review.text == (
        "Acme Rocket Skates review: do the brakes work?\n"
        "We strapped on the new Acme skates.\nSpoiler: the brakes did not work."
    )
    assert review.author == "Gadget Reviews"
    assert review.author_followers == 125_000
    assert (review.views, review.likes, review.replies) == (48_213, 1_520, 2)
    assert review.reposts is None
    assert review.language == "en"
    assert review.published_at == datetime(2024, 6, 3, 10, 0, tzinfo=UTC)

    assert first.url == f"https://www.youtube.com/watch?v={REVIEW}&lc=UgxKREWxIgDrw8w2e_Z4AaABAg"
    assert first.text == "Mine did the same, Acme support never answered 1:23"
    assert first.author == "@roadrunner"
    assert first.author_followers is None
    assert (first.likes, first.replies, first.views) == (41, 3, None)
    assert first.published_at == datetime(2024, 6, 3, 10, 30, tzinfo=UTC)
    assert second.text == "Great review! Subscribed & liked"  # textDisplay is HTML
    assert (second.likes, second.replies) == (0, 0)

    assert ankle.author_followers is None  # hidden, not 0
    assert (ankle.views, ankle.likes, ankle.replies) == (310, None, None)
    assert ankle.language == "de"
    assert (unboxing.text, unboxing.likes, unboxing.replies) == ("Unboxing the Acme anvil", 0, 0)

    # Only the search snippet is left: it is HTML-escaped, and there are no counts.
    assert gone.text == "Acme's anvil & me\nA love story <3"
    assert gone.author == "Gone Channel"
    assert gone.published_at == datetime(2024, 6, 1, 9, 0, tzinfo=UTC)
    assert (gone.author_followers, gone.views, gone.likes, gone.replies) == (None,) * 4

    assert result.cursor == Cursor(cursor="2024-06-03T10:00:00Z")


def test_requests_of_a_first_poll(httpserver: HTTPServer) -> None:
    serve(httpserver)
    poll(httpserver, max_videos=25)

    # One search page only, although it offers a nextPageToken: each costs 100 quota units.
    assert requests(httpserver, "search") == [
        {
            "part": "snippet",
            "type": "video",
            "order": "date",
            "q": "acme skates",
            "maxResults": "25",
            "key": KEY,
        }
    ]
    assert requests(httpserver, "videos") == [
        {"part": "statistics,snippet", "id": f"{REVIEW},{ANKLE},{UNBOXING},{GONE}", "key": KEY}
    ]
    assert requests(httpserver, "channels") == [
        {"part": "statistics", "id": f"{GADGET},{GONE_CHANNEL},{SKATE}", "key": KEY}
    ]
    threads = requests(httpserver, "commentThreads")
    # Not for the video whose commentCount is "0".
    assert [params.pop("videoId") for params in threads] == [REVIEW, ANKLE, GONE]
    assert threads == [{"part": "snippet", "order": "time", "maxResults": "50", "key": KEY}] * 3


def test_second_poll_asks_for_newer_videos_only(httpserver: HTTPServer) -> None:
    serve(httpserver)
    first = poll(httpserver)
    httpserver.clear()
    respond(httpserver, "search", "search_newer.json")
    respond(httpserver, "videos", "videos_newer.json")
    respond(httpserver, "channels", "channels.json")

    second = poll(httpserver, first.cursor)

    [search] = requests(httpserver, "search")
    assert search["publishedAfter"] == "2024-06-03T10:00:00Z"
    # publishedAfter is inclusive, so the newest video of the first poll comes back: dropped.
    [recall] = second.mentions
    assert recall.external_id == f"yt:{RECALL}"
    assert (recall.views, recall.author_followers) == (77, 125_000)
    assert requests(httpserver, "videos")[0]["id"] == RECALL
    assert requests(httpserver, "commentThreads") == []  # commentCount "0"
    assert second.cursor == Cursor(cursor="2024-06-03T12:15:00Z")


def test_nothing_new_keeps_the_cursor_and_spends_no_more_calls(httpserver: HTTPServer) -> None:
    respond(httpserver, "search", "empty_search.json")
    cursor = Cursor(cursor="2024-06-03T10:00:00Z")

    result = poll(httpserver, cursor)

    assert result.mentions == []
    assert result.cursor == cursor
    assert [request.path for request, _ in httpserver.log] == [f"{API}/search"]


def test_without_comments_no_comment_threads_are_read(httpserver: HTTPServer) -> None:
    serve(httpserver)
    result = poll(httpserver, comments=False)

    assert [m.external_id for m in result.mentions] == [
        f"yt:{v}" for v in (REVIEW, ANKLE, UNBOXING, GONE)
    ]
    assert requests(httpserver, "commentThreads") == []


def test_a_failing_comment_thread_other_than_4xx_fails_the_poll(httpserver: HTTPServer) -> None:
    respond(httpserver, "search", "search.json")
    respond(httpserver, "videos", "videos.json")
    respond(httpserver, "channels", "channels.json")
    httpserver.expect_request(f"{API}/commentThreads").respond_with_data("down", status=503)

    assert poll_error(httpserver).kind == "http_5xx"


# --- quota and HTTP failures -------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["search", "videos"])
def test_403_is_a_quota_back_off(httpserver: HTTPServer, endpoint: str) -> None:
    httpserver.expect_request(f"{API}/{endpoint}").respond_with_data(
        fixture("quota_exceeded.json"), status=403, content_type=JSON
    )
    serve(httpserver)

    error = poll_error(httpserver)

    assert (error.kind, error.retry_after) == ("http_429", 3600)
    assert f"{API}/{endpoint}" in str(error)
    assert "quota" in str(error)
    assert "key=" not in str(error)


def test_other_4xx_is_not_mistaken_for_quota(httpserver: HTTPServer) -> None:
    body = b'{"error": {"code": 400, "errors": [{"reason": "keyInvalid"}]}}'
    httpserver.expect_request(f"{API}/search").respond_with_data(body, status=400)

    error = poll_error(httpserver)

    assert (error.kind, error.retry_after) == ("http_4xx", None)


def test_429_carries_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{API}/search").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", 120)


def test_5xx(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{API}/search").respond_with_data("backend error", status=503)
    error = poll_error(httpserver)
    assert error.kind == "http_5xx"
    assert f"{API}/search" in str(error)


def test_unreachable_api(httpserver: HTTPServer) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    error = poll_error(httpserver, base_url=f"http://127.0.0.1:{port}{API}")
    assert error.kind == "connect"


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Sign in</body></html>",
        b"[]",
        b'{"kind": "youtube#searchListResponse"}',
        b'{"items": {"id": "k3Y8sQm1pLw"}}',
        b'{"items": ["k3Y8sQm1pLw"]}',
    ],
    ids=["html", "list", "no-items", "items-object", "items-of-strings"],
)
def test_wrong_shape_is_malformed(httpserver: HTTPServer, body: bytes) -> None:
    httpserver.expect_request(f"{API}/search").respond_with_data(body, content_type=JSON)
    error = poll_error(httpserver)
    assert error.kind == "malformed"
    assert f"{API}/search" in str(error)


def test_wrong_shape_of_video_details_is_malformed(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{API}/videos").respond_with_data(b'{"items": 3}')
    serve(httpserver)
    error = poll_error(httpserver)
    assert error.kind == "malformed"
    assert f"{API}/videos" in str(error)


# --- credentials -------------------------------------------------------------------------------


def test_missing_api_key(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("YOUTUBE_API_KEY")
    error = poll_error(httpserver)
    assert error.kind == "auth"
    assert str(error) == "environment variable YOUTUBE_API_KEY is not set"
    assert httpserver.log == []


def test_api_key_comes_from_the_configured_variable(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ACME_YOUTUBE_KEY", "other-key")
    serve(httpserver)
    poll(httpserver, api_key_env="ACME_YOUTUBE_KEY")
    assert {params["key"] for params in requests(httpserver, "search")} == {"other-key"}
