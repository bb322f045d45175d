"""TrustpilotConnector against a loopback stand-in for the Business Units API."""

from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fakes.sources import poll_once, refused
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.base import PollResult, SourceError
from connectors.trustpilot import TrustpilotConnector, TrustpilotSource
from monitor.config import ConfigError, parse_config
from monitor.model import Cursor

FIXTURES = Path(__file__).parent / "fixtures" / "trustpilot"
JSON = "application/json; charset=utf-8"
KEY = "tp-test-Secret-Api-Key-3f9a"
UNIT = "5f3a9c2e8b1d4e0001a7c3f2"
REVIEWS = f"/v1/business-units/{UNIT}/reviews"
LOST_PARCEL, FAST = "665d8a1f2b9e4c0001d3a0f1", "665d7f0e2b9e4c0001d39e22"
LATE, OKAY = "665d6c4a2b9e4c0001d39b07", "665d4d172b9e4c0001d395aa"
CHARGED_TWICE, FRENCH = "665d3b6e2b9e4c0001d39210", "665d1c0d2b9e4c0001d38c65"
OLDEST = "665cd7622b9e4c0001d38160"


@pytest.fixture(autouse=True)
def environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TRUSTPILOT_API_KEY", KEY)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def poll(server: HTTPServer, cursor: Cursor | None = None, **options: object) -> PollResult:
    config = TrustpilotSource.model_validate(
        {
            "name": "acme-trustpilot",
            "type": "trustpilot",
            "business_unit_id": UNIT,
            "per_page": 5,
            "base_url": server.url_for("/v1"),
        }
        | options
    )
    return poll_once(TrustpilotConnector(config), cursor)


def poll_error(server: HTTPServer, cursor: Cursor | None = None) -> SourceError:
    return refused(lambda: poll(server, cursor), KEY)


def paged(request: Request) -> Response:
    """The three pages of five reviews, newest first, by the ``page`` asked for."""
    assert request.args["orderBy"] == "createdat.desc"
    assert request.args["perPage"] == "5"
    return Response(fixture(f"page{request.args['page']}.json"), content_type=JSON)


def serve(server: HTTPServer, headers: dict[str, str] | None = None) -> None:
    def handler(request: Request) -> Response:
        response = paged(request)
        response.headers.update(headers or {})
        return response

    server.expect_request(REVIEWS).respond_with_handler(handler)


def asked(server: HTTPServer) -> list[str | None]:
    return [request.args.get("page") for request, _ in server.log]


def created(review_id: str) -> float:
    for page in (1, 2, 3):
        for review in json.loads(fixture(f"page{page}.json"))["reviews"]:
            if review["id"] == review_id:
                return datetime.fromisoformat(review["createdAt"]).timestamp()
    raise KeyError(review_id)


def mark(review_id: str) -> Cursor:
    """The cursor of a poll whose newest review was ``review_id``."""
    return Cursor(cursor=json.dumps({"newest": created(review_id), "ids": [review_id]}))


def test_reviews_are_normalised(httpserver: HTTPServer) -> None:
    serve(httpserver)
    result = poll(httpserver)

    # A first poll reads one page, though there is a next one.
    assert asked(httpserver) == ["1"]
    [(request, _)] = httpserver.log
    assert request.headers["apikey"] == KEY
    assert dict(request.args) == {"orderBy": "createdat.desc", "perPage": "5", "page": "1"}

    ids = [m.external_id for m in result.mentions]
    assert ids == [LOST_PARCEL, FAST, LATE, "665d5e9b2b9e4c0001d398c4", OKAY]
    lost, _, late, _, _ = result.mentions
    assert lost.source_type == "trustpilot"
    assert lost.text == (
        "Parcel lost, no refund\n"
        "Acme lost my parcel and three emails later still no refund. Never again."
    )
    assert lost.author == "Sam Carter"
    assert lost.author_followers is None
    assert lost.rating == 1
    assert lost.likes == 7
    assert lost.language == "en"
    assert lost.url == f"https://www.trustpilot.com/reviews/{LOST_PARCEL}"
    assert lost.published_at == datetime(2024, 6, 3, 9, 41, 27, tzinfo=UTC)
    assert lost.extra == {
        "author_reviews": "4",
        "company_reply": "We're sorry, Sam. Our team has emailed you about a refund.",
        "company_reply_at": "2024-06-03T11:02:10.000Z",
    }
    assert (late.language, late.rating, late.author) == ("de", 2, "Jonas Weber")
    assert late.extra == {"author_reviews": "12"}  # no company reply
    assert result.cursor == mark(LOST_PARCEL)
    assert result.truncated is None


def test_a_poll_pages_back_to_the_last_review_and_a_re_poll_finds_nothing_new(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    serve(httpserver)
    result = poll(httpserver, mark(FRENCH))

    ids = [m.external_id for m in result.mentions]
    assert len(ids) == len(set(ids)) == 7  # page 1 and the newer two of page 2
    assert ids[-2:] == ["665d3b6e2b9e4c0001d39210", "665d2a812b9e4c0001d38ef3"]
    assert FRENCH not in ids
    assert asked(httpserver) == ["1", "2"]  # page 2 reaches FRENCH: page 3 is not read
    assert result.cursor == mark(LOST_PARCEL)
    assert (result.truncated, result.rest) == (None, None)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]

    httpserver.clear_log()
    again = poll(httpserver, result.cursor)
    assert again == PollResult(cursor=result.cursor)
    assert asked(httpserver) == ["1"]


def test_the_whole_listing_is_read_to_its_last_page(httpserver: HTTPServer) -> None:
    serve(httpserver)
    old = Cursor(cursor=json.dumps({"newest": created(OLDEST) - 60, "ids": []}))
    result = poll(httpserver, old)

    assert asked(httpserver) == ["1", "2", "3"]  # page 3 has no next-page link
    assert len(result.mentions) == 12
    assert result.mentions[-1].external_id == OLDEST
    assert result.truncated is None


def test_max_pages_cuts_a_poll_short_and_says_so(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    serve(httpserver)
    result = poll(httpserver, mark(OLDEST), max_pages=2)

    assert asked(httpserver) == ["1", "2"]
    assert len(result.mentions) == 10
    assert result.truncated == 5  # a page's worth: Trustpilot gives no total
    assert result.cursor == mark(LOST_PARCEL)
    [warning] = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert "source=acme-trustpilot" in warning.getMessage()
    assert "max_pages" in warning.getMessage()


def test_a_spent_rate_limit_window_stops_paging_and_asks_for_a_rest(
    httpserver: HTTPServer,
) -> None:
    serve(
        httpserver,
        headers={
            "X-RateLimit-Limit": "833",
            "X-RateLimit-Remaining": "0",
            "X-RateLimit-Reset": str(int(time.time()) + 240),
        },
    )
    result = poll(httpserver, mark(OLDEST))

    assert asked(httpserver) == ["1"]
    assert result.truncated == 5
    assert result.rest is not None and 239 <= result.rest <= 242


def test_429_carries_retry_after(httpserver: HTTPServer) -> None:
    httpserver.expect_request(REVIEWS).respond_with_data(
        fixture("rate_limited.json"), status=429, content_type=JSON, headers={"Retry-After": "30"}
    )
    error = poll_error(httpserver)
    assert (error.kind, error.retry_after) == ("http_429", 30)


def test_a_refused_key_is_an_error_that_does_not_show_it(httpserver: HTTPServer) -> None:
    httpserver.expect_request(REVIEWS).respond_with_data(
        fixture("invalid_key.json"), status=401, content_type=JSON
    )
    error = poll_error(httpserver)
    assert error.kind == "http_4xx"
    assert REVIEWS in str(error)


def test_a_missing_key_asks_nothing(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TRUSTPILOT_API_KEY")
    error = poll_error(httpserver)
    assert (error.kind, str(error)) == (
        "auth",
        "environment variable TRUSTPILOT_API_KEY is not set",
    )
    assert httpserver.log == []


@pytest.mark.parametrize(
    "body",
    [
        b"<html><body>Bad gateway</body></html>",
        b"[]",
        b'{"reviews": {"id": "665d8a1f2b9e4c0001d3a0f1"}}',
        b'{"reviews": ["665d8a1f2b9e4c0001d3a0f1"]}',
        b'{"reviews": [], "links": {"rel": "next-page"}}',
    ],
    ids=["html", "list", "reviews-object", "reviews-of-strings", "links-object"],
)
def test_wrong_shape_is_malformed(httpserver: HTTPServer, body: bytes) -> None:
    httpserver.expect_request(REVIEWS).respond_with_data(body, content_type=JSON)
    error = poll_error(httpserver)
    assert error.kind == "malformed"
    assert REVIEWS in str(error)


def test_config_errors_name_the_line() -> None:
    text = """
[[brands]]
name = "Acme"
keywords = ["acme"]

[[sources]]
name = "acme-trustpilot"
type = "trustpilot"
business_unit_id = "acme.example"
api_key_env = "tp-123-secret"
per_page = 500
"""
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "brandmon.toml")
    found = [str(problem) for problem in caught.value.problems]
    assert len(found) == 3
    assert found[0] == (
        "brandmon.toml:9: sources[0].business_unit_id: 'acme.example' is not a Trustpilot "
        "business unit id (24 hex digits)"
    )
    assert found[1].startswith("brandmon.toml:10: sources[0].api_key_env:")
    assert "not an environment variable name" in found[1]
    assert found[2].startswith("brandmon.toml:11: sources[0].per_page:")
