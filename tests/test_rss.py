"""RssConnector and the shared HTTP layer against a real loopback HTTP server."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest
from fakes.sources import poll_once, refused
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.base import REFUSAL_BYTES, PollResult, SourceError
from connectors.http import Fetched, fetch, make_client
from connectors.rss import RssConnector, RssSource, html_to_text
from monitor import __version__
from monitor.http import parse_retry_after
from monitor.model import Cursor

FIXTURES = Path(__file__).parent / "fixtures" / "rss"
RSS = "application/rss+xml; charset=UTF-8"
ATOM = "application/atom+xml; charset=UTF-8"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def poll(
    url: str, cursor: Cursor | None = None, *, max_bytes: int = 100_000, timeout: float = 5.0
) -> PollResult:
    connector = RssConnector(RssSource(name="feed", type="rss", url=url, max_bytes=max_bytes))
    return poll_once(connector, cursor, timeout=timeout)


def poll_error(url: str, *, max_bytes: int = 100_000, timeout: float = 5.0) -> SourceError:
    return refused(lambda: poll(url, max_bytes=max_bytes, timeout=timeout))


def serve(server: HTTPServer, name: str, content_type: str = RSS, **headers: str) -> str:
    server.expect_request("/feed").respond_with_data(
        fixture(name), content_type=content_type, headers=headers
    )
    return server.url_for("/feed")


# --- parsing -----------------------------------------------------------------------------------


def test_google_news_rss(httpserver: HTTPServer) -> None:
    first, second = poll(serve(httpserver, "google_news.xml")).mentions

    assert first.source == "feed"
    assert first.source_type == "rss"
    assert first.external_id == "CBMiK2h0dHBzOi8vZXhhbXBsZS5jb20vbmV3cy9hY21lLXJlY2FsbNIBAA"
    assert first.url == (
        "https://news.google.com/rss/articles/"
        "CBMiK2h0dHBzOi8vZXhhbXBsZS5jb20vbmV3cy9hY21lLXJlY2FsbNIBAA?oc=5"
    )
    assert first.text == (
        "Acme recalls 10,000 rocket skates over brake failures - Example Times. "
        "Acme recalls 10,000 rocket skates over brake failures Example Times"
    )
    assert first.author == "Example Times"  # the <source>, more useful than the feed title
    assert first.published_at == datetime(2024, 6, 3, 9, 30, tzinfo=UTC)
    assert first.language == "en-US"

    assert second.text.startswith("Why investors love Acme & its anvils - Daily Ledger. ")
    assert second.published_at == datetime(2024, 6, 2, 16, 5, tzinfo=UTC)  # from +0200


def test_google_alerts_atom(httpserver: HTTPServer) -> None:
    first, second = poll(serve(httpserver, "google_alerts.xml", ATOM)).mentions

    assert first.external_id == "tag:google.com,2013:googlealerts/feed:11111111111111111111"
    # The real article, unwrapped from the Google redirect but otherwise as published.
    assert first.url == "https://www.example.com/business/acme-factory?id=42&utm_source=google"
    assert first.text == (
        "Acme opens new anvil factory in Ohio. "
        "The Acme Corporation said on Monday it will open a factory & hire 300 people ..."
    )
    # Entries have an empty <author><name/>, and the feed's title is the alert's name ("Google
    # Alert - Acme"), the same for every article: the author is the site the article is on.
    assert first.author == "example.com"
    assert first.published_at == datetime(2024, 6, 3, 8, 12, tzinfo=UTC)
    assert first.language is None

    assert second.url == "https://forum.example.org/t/acme-support/981"
    assert second.author == "forum.example.org"
    assert second.text.endswith("I have been on hold with Acme for two hours …")


def test_other_feeds_keep_their_authors_when_they_link_through_google(
    httpserver: HTTPServer,
) -> None:
    [item] = poll(serve(httpserver, "newsletter.xml")).mentions

    assert item.url == "https://markets.example.com/acme-recall-cost"
    assert item.author == "Jo Editor"


def test_youtube_channel_feed(httpserver: HTTPServer) -> None:
    [video] = poll(serve(httpserver, "youtube.xml", ATOM)).mentions

    assert video.external_id == "yt:video:aBcDeFgHiJk"
    assert video.url == "https://www.youtube.com/watch?v=aBcDeFgHiJk"
    assert video.text == (
        "Acme Rocket Skates review: do the brakes work? "
        "We strapped on the new Acme skates. Spoiler: the brakes did not work."
    )
    assert video.author == "Gadget Reviews"
    assert video.published_at == datetime(2024, 6, 1, 15, 0, tzinfo=UTC)
    assert video.views == 48213


def test_duplicate_entries_collapse(httpserver: HTTPServer) -> None:
    mentions = poll(serve(httpserver, "duplicates.xml")).mentions

    ids = [m.external_id for m in mentions]
    # Repeated guid, and another guid for the same (tracking-decorated) link, are dropped.
    assert ids[:2] == ["post-1", "https://blog.example/acme-skates"]
    # An entry with neither guid nor link gets a stable id from title and date.
    assert len(ids) == 3 and ids[2].startswith("sha256:")
    assert mentions[2].url is None
    assert poll(httpserver.url_for("/feed")).mentions[2].external_id == ids[2]


def test_slightly_broken_feed_is_still_used(httpserver: HTTPServer) -> None:
    [mention] = poll(serve(httpserver, "sloppy.xml", "text/xml")).mentions  # bare "&"

    assert mention.text == "Acme & Sons open a store. Great news Opening on Friday"
    assert mention.author == "editor@shop.example (Jo Editor)"
    assert mention.published_at is None


def test_feed_served_with_a_wrong_content_type_is_used(httpserver: HTTPServer) -> None:
    assert len(poll(serve(httpserver, "google_alerts.xml", "text/html")).mentions) == 2


def test_empty_feed_is_not_an_error(httpserver: HTTPServer) -> None:
    assert poll(serve(httpserver, "empty.xml")).mentions == []


GOOGLE_NEWS = fixture("google_news.xml")


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (fixture("not_a_feed.html"), "text/html; charset=utf-8"),
        (b"<html><body><p>Hi</p></body></html>", "text/html"),  # well-formed, but not a feed
        (b"\x00\x01\xfe garbage {", "application/octet-stream"),
        (b'{"items": []}', "application/json"),
        (b"", RSS),
        (GOOGLE_NEWS[: GOOGLE_NEWS.index(b"<item>")], RSS),  # truncated before any entry
    ],
    ids=["html", "xhtml", "garbage", "json", "empty", "truncated"],
)
def test_what_is_not_a_feed_is_malformed(
    httpserver: HTTPServer, body: bytes, content_type: str
) -> None:
    httpserver.expect_request("/feed").respond_with_data(body, content_type=content_type)
    assert poll_error(httpserver.url_for("/feed")).kind == "malformed"


def test_html_to_text() -> None:
    markup = "<p>A&amp;B&nbsp;<b>bold</b></p><p>next<br/>line</p><script>x()</script> &hellip;"
    assert html_to_text(markup) == "A&B bold next line …"


# --- conditional GET ---------------------------------------------------------------------------


def test_validators_are_sent_back_and_304_means_not_modified(httpserver: HTTPServer) -> None:
    validators = {"ETag": '"v1"', "Last-Modified": "Mon, 03 Jun 2024 10:15:00 GMT"}
    httpserver.expect_oneshot_request("/feed").respond_with_data(
        GOOGLE_NEWS, content_type=RSS, headers=validators
    )
    first = poll(httpserver.url_for("/feed"))
    assert first.cursor == Cursor(etag='"v1"', last_modified="Mon, 03 Jun 2024 10:15:00 GMT")
    assert not first.not_modified

    httpserver.expect_oneshot_request(
        "/feed",
        headers={"If-None-Match": '"v1"', "If-Modified-Since": "Mon, 03 Jun 2024 10:15:00 GMT"},
    ).respond_with_data(status=304)
    second = poll(httpserver.url_for("/feed"), first.cursor)

    assert second.not_modified
    assert second.mentions == []
    assert second.cursor == first.cursor
    httpserver.check_assertions()


def test_cursor_survives_a_response_without_validators(httpserver: HTTPServer) -> None:
    old = Cursor(cursor="opaque", etag='"v1"', last_modified="Mon, 03 Jun 2024 10:15:00 GMT")
    result = poll(serve(httpserver, "google_news.xml", ETag='"v2"'), old)
    assert result.cursor == Cursor(
        cursor="opaque", etag='"v2"', last_modified="Mon, 03 Jun 2024 10:15:00 GMT"
    )


def test_no_validators_are_sent_without_a_cursor(httpserver: HTTPServer) -> None:
    poll(serve(httpserver, "google_news.xml"))
    [(request, _)] = httpserver.log
    assert "If-None-Match" not in request.headers
    assert "If-Modified-Since" not in request.headers


# --- HTTP failures -----------------------------------------------------------------------------


def test_body_over_max_bytes_with_content_length(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(b"x" * 5_000, content_type=RSS)
    assert poll_error(httpserver.url_for("/feed"), max_bytes=1_000).kind == "too_large"


def test_streamed_body_over_max_bytes_is_cut_off(httpserver: HTTPServer) -> None:
    def endless(_: Request) -> Response:
        # A generator body is sent without Content-Length: only the streaming check can stop it.
        return Response((b"<rss>" + b" " * 65_536 for _ in range(1_000)), content_type=RSS)

    httpserver.expect_request("/feed").respond_with_handler(endless)
    assert poll_error(httpserver.url_for("/feed"), max_bytes=1_000).kind == "too_large"


def test_body_of_exactly_max_bytes_is_accepted(httpserver: HTTPServer) -> None:
    url = serve(httpserver, "google_news.xml")
    assert len(poll(url, max_bytes=len(GOOGLE_NEWS)).mentions) == 2


@pytest.mark.parametrize(
    ("status", "kind"),
    [(429, "http_429"), (503, "http_5xx"), (500, "http_5xx"), (404, "http_4xx"), (403, "http_4xx")],
)
def test_http_status_errors(httpserver: HTTPServer, status: int, kind: str) -> None:
    httpserver.expect_request("/feed").respond_with_data("busy", status=status)
    error = poll_error(httpserver.url_for("/feed"))
    assert error.kind == kind
    assert str(status) in str(error)
    assert error.retry_after is None


def test_429_carries_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data(
        "slow down", status=429, headers={"Retry-After": "120"}
    )
    error = poll_error(httpserver.url_for("/feed"))
    assert (error.kind, error.retry_after) == ("http_429", 120)


def test_retry_after_formats() -> None:
    assert parse_retry_after("120") == 120
    assert parse_retry_after(" 7 ") == 7
    for garbled in (None, "", "soon", "-5", "1.5"):
        assert parse_retry_after(garbled) is None
    in_five_minutes = format_datetime(datetime.now(UTC) + timedelta(seconds=300), usegmt=True)
    delay = parse_retry_after(in_five_minutes)
    assert delay is not None and 290 < delay <= 300
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0


def test_slow_server_times_out(httpserver: HTTPServer) -> None:
    def slow(_: Request) -> Response:
        time.sleep(0.5)
        return Response(GOOGLE_NEWS, content_type=RSS)

    httpserver.expect_request("/feed").respond_with_handler(slow)
    assert poll_error(httpserver.url_for("/feed"), timeout=0.1).kind == "timeout"


def test_dripping_server_hits_the_deadline(httpserver: HTTPServer) -> None:
    def drip() -> Iterator[bytes]:
        for _ in range(40):
            yield b" "
            time.sleep(0.05)

    httpserver.expect_request("/feed").respond_with_handler(lambda _: Response(drip()))

    async def run() -> Fetched:
        async with make_client(timeout=1.0) as client:
            return await fetch(client, httpserver.url_for("/feed"), max_bytes=1_000, deadline=0.3)

    with pytest.raises(SourceError) as caught:
        asyncio.run(run())
    assert caught.value.kind == "timeout"


def test_redirects_are_followed(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/old").respond_with_data(status=301, headers={"Location": "/feed"})
    serve(httpserver, "youtube.xml", ATOM)
    assert len(poll(httpserver.url_for("/old")).mentions) == 1


def test_redirect_loop(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/loop").respond_with_data(status=302, headers={"Location": "/loop"})
    assert poll_error(httpserver.url_for("/loop")).kind == "redirect"


def test_connection_refused() -> None:
    assert poll_error(f"http://127.0.0.1:{unused_port()}/feed").kind == "connect"


# --- secrets and identity ----------------------------------------------------------------------


def test_errors_never_show_query_string_user_info_or_headers(httpserver: HTTPServer) -> None:
    httpserver.expect_request("/feed").respond_with_data("no", status=401)
    url = f"http://user:PASSWORD@127.0.0.1:{httpserver.port}/feed?key=SECRET"

    async def run() -> Fetched:
        async with make_client() as client:
            return await fetch(
                client, url, headers={"Authorization": "Bearer TOKEN"}, max_bytes=1_000
            )

    with pytest.raises(SourceError) as caught:
        asyncio.run(run())
    message = str(caught.value)
    assert caught.value.kind == "http_4xx"
    assert f"127.0.0.1:{httpserver.port}/feed" in message
    for secret in ("SECRET", "PASSWORD", "TOKEN", "key="):
        assert secret not in message


@pytest.mark.parametrize("scenario", ["http_5xx", "malformed", "connect"])
def test_error_messages_hide_api_keys(httpserver: HTTPServer, scenario: str) -> None:
    if scenario == "http_5xx":
        httpserver.expect_request("/feed").respond_with_data("down", status=503)
    else:
        httpserver.expect_request("/feed").respond_with_data("<html/>", content_type="text/html")
    port = unused_port() if scenario == "connect" else httpserver.port
    error = poll_error(f"http://127.0.0.1:{port}/feed?key=SECRET")
    assert error.kind == scenario
    assert "/feed" in str(error)
    assert "SECRET" not in str(error)


def test_user_agent_names_brandmon(httpserver: HTTPServer) -> None:
    poll(serve(httpserver, "google_news.xml"))
    [(request, _)] = httpserver.log
    assert request.headers["User-Agent"].startswith(f"brandmon/{__version__} (+https://")


def unused_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_a_refusal_keeps_its_status_and_the_head_of_its_body(httpserver: HTTPServer) -> None:
    """APIs say why they refused in the body: the error carries it, capped, in one request."""
    reason = b'{"error": "slow down", "retry_in": 60}'
    httpserver.expect_request("/small").respond_with_data(reason, status=429)
    httpserver.expect_request("/huge").respond_with_data(b"x" * 10_000_000, status=503)

    async def refused(path: str) -> SourceError:
        async with make_client(timeout=5.0) as client:
            with pytest.raises(SourceError) as caught:
                await fetch(client, httpserver.url_for(path), max_bytes=1_000)
        return caught.value

    small, huge = asyncio.run(refused("/small")), asyncio.run(refused("/huge"))
    assert (small.kind, small.status, small.body) == ("http_429", 429, reason)
    assert (huge.kind, huge.status, len(huge.body)) == ("http_5xx", 503, REFUSAL_BYTES)
    assert len(httpserver.log) == 2
