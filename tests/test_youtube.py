"""YouTubeConnector against a loopback stand-in for the YouTube Data API v3."""

from __future__ import annotations

import logging
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fakes.sources import poll_once, refused
from pydantic import ValidationError
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

import connectors.youtube
from connectors.base import PollResult, SourceError
from connectors.youtube import FIXED_UNITS, YouTubeConnector, YouTubeSource, until_quota_renews
from monitor.model import Cursor
from monitor.scheduler import backoff

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
BUSY = ["Fh3Kx9LmQ2w", "Vb8Nw4TzR1e", "Jd6Pq2WsX7u"]  # three new videos, all commented
NOW = datetime(2024, 6, 3, 10, 0, tzinfo=UTC)  # 03:00 in California
UNTIL_MIDNIGHT_PACIFIC = 21 * 3600 + 60  # with a minute's margin


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YOUTUBE_API_KEY", KEY)
    monkeypatch.setattr(connectors.youtube, "utcnow", lambda: NOW)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def poll(server: HTTPServer, cursor: Cursor | None = None, **options: object) -> PollResult:
    config = YouTubeSource.model_validate(
        {"name": "yt", "type": "youtube", "query": "acme skates", "base_url": server.url_for(API)}
        | options
    )
    return poll_once(YouTubeConnector(config), cursor)


def poll_error(server: HTTPServer, **options: object) -> SourceError:
    return refused(lambda: poll(server, **options), KEY)


def respond(server: HTTPServer, endpoint: str, name: str, *, once: bool = False) -> None:
    expect = server.expect_oneshot_request if once else server.expect_request
    expect(f"{API}/{endpoint}").respond_with_data(fixture(name), content_type=JSON)


def comment_threads(request: Request) -> Response:
    if request.args["videoId"] == REVIEW:
        return Response(fixture("comment_threads.json"), content_type=JSON)
    return Response('{"kind": "youtube#commentThreadListResponse", "items": []}', content_type=JSON)


def refuse(server: HTTPServer, endpoint: str, name: str) -> None:
    """Answer every call to ``endpoint`` with the refusal in fixture ``name``."""
    status = 400 if name.startswith(("key_invalid", "invalid_")) else 403
    server.expect_request(f"{API}/{endpoint}").respond_with_data(
        fixture(name), status=status, content_type=JSON
    )


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
        f"yt:{ANKLE}",  # comments disabled (no commentCount): not asked for
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
    # Only for the video with comments: not for a commentCount of "0", nor for a video whose
    # comments are disabled (no commentCount) or that is gone (no statistics at all).
    assert requests(httpserver, "commentThreads") == [
        {"part": "snippet", "videoId": REVIEW, "order": "time", "maxResults": "50", "key": KEY}
    ]


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


def test_comments_disabled_since_they_were_counted_skip_that_video_only(
    httpserver: HTTPServer,
) -> None:
    respond(httpserver, "search", "search.json")
    respond(httpserver, "videos", "videos.json")
    respond(httpserver, "channels", "channels.json")
    refuse(httpserver, "commentThreads", "comments_disabled.json")

    result = poll(httpserver)

    assert [m.external_id for m in result.mentions] == [
        f"yt:{v}" for v in (REVIEW, ANKLE, UNBOXING, GONE)
    ]
    assert result.rest is None
    # Why (commentsDisabled) is read from the refusal itself: one request.
    assert [p["videoId"] for p in requests(httpserver, "commentThreads")] == [REVIEW]


# --- the quota budget --------------------------------------------------------------------------


def serve_busy(server: HTTPServer) -> None:
    respond(server, "search", "search_busy.json")
    respond(server, "videos", "videos_busy.json")
    respond(server, "channels", "channels.json")
    server.expect_request(f"{API}/commentThreads").respond_with_handler(comment_threads)


def test_a_poll_spends_at_most_its_share_of_the_daily_quota(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    serve_busy(httpserver)
    # Every 15 minutes a poll may spend 10,000 × 15 / 1,440 = 104 units: the search (100), the
    # statistics of videos and channels (1 + 1) and two of the three comment threads.
    result = poll(httpserver, interval="15m")

    assert [p["videoId"] for p in requests(httpserver, "commentThreads")] == BUSY[:2]
    assert [m.external_id for m in result.mentions] == [f"yt:{v}" for v in BUSY]
    assert result.cursor == Cursor(cursor="2024-06-03T14:40:00Z")
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"videos={BUSY[2]}" in warning.getMessage()
    assert "share of the quota (104 units)" in warning.getMessage()


def test_a_larger_share_reads_every_video_s_comments(httpserver: HTTPServer) -> None:
    serve_busy(httpserver)
    poll(httpserver)  # every 30 minutes: 208 units, 106 of them for comment threads
    assert [p["videoId"] for p in requests(httpserver, "commentThreads")] == BUSY


def test_the_daily_quota_is_shared_out_between_the_day_s_polls() -> None:
    def source(**options: object) -> YouTubeSource:
        return YouTubeSource.model_validate(
            {"name": "yt", "type": "youtube", "query": "acme"} | options
        )

    assert source().poll_quota == 208  # 10,000 × 30 / 1,440
    assert source(daily_quota=5_000).poll_quota == 104
    assert source(interval="15m").poll_quota == 104
    # The shortest interval the config accepts covers what a poll must spend before comments.
    assert source(interval="882s").poll_quota >= FIXED_UNITS
    with pytest.raises(ValidationError) as caught:
        source(interval="10m")
    assert (
        "a poll every 10m may spend 69 of the 10000 daily quota units, less than the 102 a poll "
        "needs (a search costs 100): poll every 15m or more, or raise daily_quota"
    ) in str(caught.value)
    with pytest.raises(ValidationError, match="poll every 30m or more"):
        source(daily_quota=5_000, interval="15m")


# --- refusals and HTTP failures -------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["search", "videos"])
def test_quota_exceeded_rests_until_midnight_pacific_time(
    httpserver: HTTPServer, endpoint: str
) -> None:
    refuse(httpserver, endpoint, "quota_exceeded.json")
    serve(httpserver)

    error = poll_error(httpserver)

    assert (error.kind, error.retry_after) == ("http_429", UNTIL_MIDNIGHT_PACIFIC)
    assert f"HTTP 403 from {httpserver.url_for(f'{API}/{endpoint}')} (quotaExceeded)" in str(error)
    assert "quota of the key's project is spent for today" in str(error)
    assert "key=" not in str(error)
    assert len(requests(httpserver, endpoint)) == 1  # why is read from the refusal itself


def test_quota_exceeded_while_reading_comments_keeps_the_videos(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    respond(httpserver, "search", "search_busy.json")
    respond(httpserver, "videos", "videos_busy.json")
    respond(httpserver, "channels", "channels.json")
    refuse(httpserver, "commentThreads", "quota_exceeded.json")

    result = poll(httpserver)

    assert [m.external_id for m in result.mentions] == [f"yt:{v}" for v in BUSY]
    assert result.cursor == Cursor(cursor="2024-06-03T14:40:00Z")
    assert result.rest == UNTIL_MIDNIGHT_PACIFIC
    # No further comment thread is asked for once the quota is known to be spent.
    assert [p["videoId"] for p in requests(httpserver, "commentThreads")] == [BUSY[0]]
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert f"videos={','.join(BUSY)}" in warning.getMessage()


def test_the_quota_day_ends_at_midnight_in_california() -> None:
    assert until_quota_renews(NOW) == UNTIL_MIDNIGHT_PACIFIC
    # 00:30 on the day the clocks go back (3 November 2024): that day has 25 hours.
    assert until_quota_renews(datetime(2024, 11, 3, 7, 30, tzinfo=UTC)) == 24.5 * 3600 + 60
    # 23:59 PST, in winter: a minute (plus the margin).
    assert until_quota_renews(datetime(2024, 1, 16, 7, 59, tzinfo=UTC)) == 120


@pytest.mark.parametrize(
    ("name", "reasons", "cause"),
    [
        ("key_invalid.json", "API_KEY_INVALID, badRequest", "the API key is not valid"),
        ("key_invalid_legacy.json", "keyInvalid", "the API key is not valid"),
        (
            "access_not_configured.json",
            "SERVICE_DISABLED, accessNotConfigured",
            "the YouTube Data API v3 is not enabled in the key's Google Cloud project",
        ),
        (
            "referrer_blocked.json",
            "API_KEY_HTTP_REFERRER_BLOCKED, forbidden",
            "the key is restricted to websites (HTTP referrers)",
        ),
        ("forbidden.json", "forbidden", "the key is not allowed to make this request"),
    ],
)
def test_a_refused_key_is_an_auth_error_naming_the_cause(
    httpserver: HTTPServer, name: str, reasons: str, cause: str
) -> None:
    refuse(httpserver, "search", name)

    error = poll_error(httpserver)

    assert error.kind == "auth"
    assert f"({reasons}): {cause}" in str(error)
    assert error.retry_after is None
    # No Retry-After: the scheduler backs off exponentially, to at most an hour between tries.
    interval = timedelta(minutes=30)
    assert backoff(interval, 1, error.retry_after) >= 0.8 * interval
    assert backoff(interval, 3, error.retry_after) <= timedelta(hours=1)


def test_a_rate_limit_is_not_taken_for_the_quota(httpserver: HTTPServer) -> None:
    refuse(httpserver, "search", "rate_limit_exceeded.json")
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", None)
    assert "(rateLimitExceeded): too many requests in a short time" in str(error)


def test_a_bad_request_that_is_not_about_the_key_stays_http_4xx(httpserver: HTTPServer) -> None:
    refuse(httpserver, "search", "invalid_search_filter.json")
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_4xx", None)
    assert "HTTP 400" in str(error)


def test_a_refusal_without_a_readable_reason(httpserver: HTTPServer) -> None:
    httpserver.expect_request(f"{API}/search").respond_with_data("<html>403</html>", status=403)
    error = poll_error(httpserver)
    assert error.kind == "auth"
    assert "(no reason given): check that the API key is valid" in str(error)


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
