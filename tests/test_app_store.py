"""AppStoreConnector against a loopback stand-in for Apple's customer-reviews feed (JSON)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakes.sources import poll_once, refused
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.app_store import AppStoreConnector, AppStoreSource
from connectors.base import PollResult, SourceError
from monitor.config import ConfigError, parse_config
from monitor.model import Cursor

FIXTURES = Path(__file__).parent / "fixtures" / "app_store"
JSON = "text/javascript; charset=utf-8"  # what Apple's feed is served as
APP = "1519204541"
NEWEST, SECOND, LAST_ON_PAGE_1 = "11345092817", "11345092810", "11345092474"
ON_PAGE_2 = "11345092411"  # the ninth review of page 2
MY_REVIEW = "11344990001"


def feed_path(country: str, page: int) -> str:
    return f"/{country}/rss/customerreviews/page={page}/id={APP}/sortby=mostrecent/json"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def serve(server: HTTPServer, country: str, page: int, name: str) -> None:
    server.expect_request(feed_path(country, page)).respond_with_data(
        fixture(name), content_type=JSON
    )


def poll(server: HTTPServer, cursor: Cursor | None = None, **options: object) -> PollResult:
    config = AppStoreSource.model_validate(
        {"name": "acme-ios", "type": "app_store", "app_id": APP, "base_url": server.url_for("/")}
        | options
    )
    return poll_once(AppStoreConnector(config), cursor)


def poll_error(server: HTTPServer, **options: object) -> SourceError:
    return refused(lambda: poll(server, **options))


def cursor(**newest: str) -> Cursor:
    return Cursor(cursor=json.dumps({country: int(i) for country, i in newest.items()}))


def pages(server: HTTPServer) -> list[str]:
    return [request.path for request, _ in server.log]


def test_reviews_are_normalised(httpserver: HTTPServer) -> None:
    serve(httpserver, "us", 1, "page1.json")
    result = poll(httpserver)

    # The first entry is the app itself: not a review.
    assert len(result.mentions) == 50
    assert [m.external_id for m in result.mentions][:2] == [NEWEST, SECOND]
    assert {m.source_type for m in result.mentions} == {"app_store"}
    first, second = result.mentions[:2]
    assert first.text == (
        "Crashes at checkout\n"
        "Acme Rockets crashes every time I tap Pay. Lost my cart twice & support never answered."
    )
    assert first.author == "rocketfan88"
    assert first.rating == 1
    assert first.author_followers is None
    assert first.language is None  # the feed does not say; the store's country is kept
    assert first.extra == {"country": "us", "version": "5.12.0"}
    assert first.published_at == datetime(2024, 6, 3, 11, 51, 22, tzinfo=UTC)  # -07:00 in
    assert first.url == f"https://apps.apple.com/us/app/id{APP}?see-all=reviews&review={NEWEST}"
    assert len({m.url for m in result.mentions}) == 50  # one URL each: storage dedups by URL
    assert second.rating == 5
    # A first poll reads one page, though the page is full.
    assert pages(httpserver) == [feed_path("us", 1)]
    assert json.loads(result.cursor.cursor or "") == {"us": int(NEWEST)}
    assert result.truncated is None


def test_a_poll_pages_back_to_the_review_seen_last_and_reports_each_once(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    serve(httpserver, "us", 1, "page1.json")
    serve(httpserver, "us", 2, "page2.json")
    result = poll(httpserver, cursor(us=ON_PAGE_2))

    ids = [m.external_id for m in result.mentions]
    assert len(ids) == len(set(ids)) == 50 + 8
    assert ids[0] == NEWEST and ids[49] == LAST_ON_PAGE_1
    assert all(int(i) > int(ON_PAGE_2) for i in ids)
    assert pages(httpserver) == [feed_path("us", 1), feed_path("us", 2)]
    assert json.loads(result.cursor.cursor or "") == {"us": int(NEWEST)}
    assert result.truncated is None
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    # Polled again, nothing is new: one page, no mentions, the cursor stays.
    httpserver.clear_log()
    again = poll(httpserver, result.cursor)
    assert again.mentions == []
    assert again.cursor == result.cursor
    assert pages(httpserver) == [feed_path("us", 1)]


def test_each_country_has_its_own_cursor_and_a_single_entry_is_an_object(
    httpserver: HTTPServer,
) -> None:
    serve(httpserver, "us", 1, "page1.json")
    serve(httpserver, "my", 1, "single.json")
    result = poll(httpserver, cursor(us=SECOND), countries=["us", "my"])

    assert [(m.external_id, m.extra["country"]) for m in result.mentions] == [
        (NEWEST, "us"),
        (MY_REVIEW, "my"),
    ]
    malay = result.mentions[1]
    assert malay.text == "Tak boleh log masuk\nAplikasi Acme tak boleh log masuk sejak semalam."
    assert (malay.author, malay.rating) == ("aminah_k", 2)
    assert malay.url == f"https://apps.apple.com/my/app/id{APP}?see-all=reviews&review={MY_REVIEW}"
    assert json.loads(result.cursor.cursor or "") == {"us": int(NEWEST), "my": int(MY_REVIEW)}


def test_an_app_without_reviews_keeps_the_cursor(httpserver: HTTPServer) -> None:
    serve(httpserver, "us", 1, "empty.json")  # no "entry" at all
    assert poll(httpserver) == PollResult(cursor=Cursor())
    kept = cursor(us=NEWEST)
    assert poll(httpserver, kept) == PollResult(cursor=kept)


def full_pages(request: Request) -> Response:
    """Every page full of reviews newer than any cursor of these tests, like page 1."""
    number = int(request.path.split("/page=")[1].split("/")[0])
    body = json.loads(fixture("page1.json"))
    for entry in body["feed"]["entry"][1:]:
        entry["id"]["label"] = str(int(entry["id"]["label"]) - (number - 1) * 350)
    return Response(json.dumps(body), content_type=JSON)


@pytest.mark.parametrize("max_pages", [2, 10])
def test_pages_are_bounded_and_a_poll_cut_short_says_so(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture, max_pages: int
) -> None:
    # Apple serves ten pages: a tenth full page that has not reached the cursor leaves
    # reviews that cannot be read, as max_pages does.
    for number in range(1, max_pages + 2):
        httpserver.expect_request(feed_path("us", number)).respond_with_handler(full_pages)
    result = poll(httpserver, cursor(us="11000000000"), max_pages=max_pages)

    assert len(httpserver.log) == max_pages
    assert len(result.mentions) == 50 * max_pages
    assert result.truncated == 50
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "source=acme-ios/us" in warning.getMessage()
    assert "max_pages" in warning.getMessage()


def test_429_carries_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request(feed_path("us", 1)).respond_with_data(
        "", status=429, headers={"Retry-After": "60"}
    )
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", 60)


def test_a_server_error_names_the_feed(httpserver: HTTPServer) -> None:
    httpserver.expect_request(feed_path("us", 1)).respond_with_data(
        "<html><body><h1>503 Service Unavailable</h1></body></html>",
        status=503,
        content_type="text/html",
    )
    error = poll_error(httpserver)
    assert error.kind == "http_5xx"
    assert feed_path("us", 1) in str(error)


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Your request produced an error.</body></html>",
        b"[]",
        b'{"feed": []}',
        b'{"feed": {"entry": "11345092817"}}',
        b'{"feed": {"entry": [{"id": {"label": "1"}}, "11345092817"]}}',
    ],
    ids=["html", "list", "feed-list", "entry-string", "entry-of-strings"],
)
def test_wrong_shape_is_malformed(httpserver: HTTPServer, body: bytes) -> None:
    httpserver.expect_request(feed_path("us", 1)).respond_with_data(body, content_type=JSON)
    error = poll_error(httpserver)
    assert error.kind == "malformed"
    assert feed_path("us", 1) in str(error)


def test_config_errors_name_the_line() -> None:
    text = """
[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "acme-ios"
type = "app_store"
app_id = "id1519204541"
countries = ["us", "USA"]
max_pages = 11
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "brandmon.toml")
    found = [str(problem) for problem in caught.value.problems]
    assert len(found) == 3
    assert found == [
        "brandmon.toml:9: sources[0].app_id: 'id1519204541' is not an App Store app id: the "
        "number after 'id' in its store URL",
        "brandmon.toml:10: sources[0].countries[1]: 'USA' is not a store's two-letter country "
        'code, such as "us"',
        "brandmon.toml:11: sources[0].max_pages: Input should be less than or equal to 10",
    ]
