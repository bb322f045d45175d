"""MastodonConnector and BlueskyConnector against loopback stand-ins for their APIs."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from pytest_httpserver import HTTPServer

from connectors.base import Connector, Cursor, PollResult, SourceError
from connectors.bluesky import BlueskyConnector
from connectors.http import make_client, slow_down, until_reset
from connectors.mastodon import MastodonConnector
from monitor.config import BlueskySource, MastodonSource

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "mastodon-secret-token"


def run(connector: Connector, cursor: Cursor | None = None) -> PollResult:
    async def go() -> PollResult:
        async with make_client(timeout=5.0) as client:
            return await connector.poll(client, cursor or Cursor())

    return asyncio.run(go())


def mastodon(server: HTTPServer, **options: object) -> MastodonConnector:
    config = {
        "name": "m",
        "type": "mastodon",
        "instance": server.url_for(""),
        "hashtags": ["Gridline"],
    }
    return MastodonConnector(MastodonSource.model_validate(config | options))


def bluesky(server: HTTPServer, **options: object) -> BlueskyConnector:
    config = {"name": "b", "type": "bluesky", "query": "skyways", "base_url": server.url_for("")}
    return BlueskyConnector(BlueskySource.model_validate(config | options))


def test_mastodon_hashtag_statuses_become_mentions(httpserver: HTTPServer) -> None:
    statuses = json.loads((FIXTURES / "mastodon/tag.json").read_text())
    httpserver.expect_request(
        "/api/v1/timelines/tag/Gridline", query_string={"limit": "40"}
    ).respond_with_json(statuses)
    first = run(mastodon(httpserver))
    mia, anna = first.mentions
    assert mia.text == "Third power cut this week #Gridline, still no answer from support & no ETA"
    assert (mia.author, mia.author_followers, mia.likes, mia.reposts, mia.replies) == (
        "@mia",
        2400,
        11,
        5,
        2,
    )
    assert mia.url == "https://mastodon.social/@mia/113533901234567890"
    assert mia.language == "en" and mia.published_at is not None
    # a boost is read as the boosted status, with its author
    assert anna.text == "Gridline Störung schon wieder seit Stunden kein Strom"
    assert (anna.author, anna.language) == ("@anna@chaos.social", "de")

    httpserver.clear()
    httpserver.expect_request(
        "/api/v1/timelines/tag/Gridline",
        query_string={"limit": "40", "since_id": "113533901234567890"},
    ).respond_with_json([])
    assert run(mastodon(httpserver), first.cursor).mentions == []


def test_mastodon_search_needs_and_sends_the_token(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"hashtags": [], "query": "gridline", "token_env": "TEST_MASTODON_TOKEN"}
    monkeypatch.delenv("TEST_MASTODON_TOKEN", raising=False)
    with pytest.raises(SourceError) as missing:
        run(mastodon(httpserver, **options))
    assert missing.value.kind == "auth" and "TEST_MASTODON_TOKEN" in str(missing.value)
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)
    statuses = json.loads((FIXTURES / "mastodon/tag.json").read_text())
    httpserver.expect_request(
        "/api/v2/search",
        headers={"Authorization": f"Bearer {TOKEN}"},
        query_string={"q": "gridline", "type": "statuses", "resolve": "false", "limit": "40"},
    ).respond_with_json({"accounts": [], "statuses": statuses[:1], "hashtags": []})
    assert [m.author for m in run(mastodon(httpserver, **options)).mentions] == ["@mia"]


@pytest.mark.parametrize(
    ("respond", "kind"),
    [
        (
            lambda r: r.respond_with_data("<html>maintenance</html>", content_type="text/html"),
            "malformed",
        ),
        (lambda r: r.respond_with_json({"error": "Record not found"}), "malformed"),
        (
            lambda r: r.respond_with_data("slow", status=429, headers={"Retry-After": "30"}),
            "http_429",
        ),
        (lambda r: r.respond_with_data("down", status=502), "http_5xx"),
    ],
)
def test_mastodon_failures_are_clear_errors(httpserver: HTTPServer, respond, kind: str) -> None:  # type: ignore[no-untyped-def]
    respond(httpserver.expect_request("/api/v1/timelines/tag/Gridline"))
    with pytest.raises(SourceError) as error:
        run(mastodon(httpserver))
    assert error.value.kind == kind


def test_bluesky_posts_become_mentions_and_are_not_reported_twice(httpserver: HTTPServer) -> None:
    body = json.loads((FIXTURES / "bluesky/search.json").read_text())
    httpserver.expect_request(
        "/xrpc/app.bsky.feed.searchPosts",
        query_string={"q": "skyways", "sort": "latest", "limit": "100"},
    ).respond_with_json(body)
    first = run(bluesky(httpserver))
    dana, ola = first.mentions
    assert dana.url == "https://bsky.app/profile/dana.bsky.social/post/3lbqz2xk7ss2a"
    assert (dana.author, dana.author_followers, dana.likes, dana.reposts, dana.replies) == (
        "@dana.bsky.social",
        15300,
        40,
        15,
        4,
    )
    assert dana.language == "en" and dana.published_at is not None
    assert dana.published_at.isoformat().startswith("2024-11-24T09:30:01")
    assert ola.author_followers is None and ola.language == "pl"

    httpserver.clear()
    newer = dict(
        body["posts"][1],
        uri="at://did:plc:x/app.bsky.feed.post/3new",
        indexedAt="2024-11-24T09:31:00Z",
    )
    httpserver.expect_request(
        "/xrpc/app.bsky.feed.searchPosts",
        query_string={
            "q": "skyways",
            "sort": "latest",
            "limit": "100",
            "since": "2024-11-24T09:30:02.456000Z",
        },
    ).respond_with_json({"posts": [newer, body["posts"][0]]})
    again = run(bluesky(httpserver), first.cursor)
    assert [m.external_id for m in again.mentions] == ["at://did:plc:x/app.bsky.feed.post/3new"]


def test_bluesky_errors(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request("/xrpc/app.bsky.feed.searchPosts").respond_with_json(
        {"error": "InvalidRequest", "message": 'Error: Params must have the property "q"'},
        status=400,
    )
    with pytest.raises(SourceError) as bad:
        run(bluesky(httpserver))
    assert bad.value.kind == "http_4xx"
    httpserver.clear()
    httpserver.expect_request("/xrpc/app.bsky.feed.searchPosts").respond_with_json({"posts": "x"})
    with pytest.raises(SourceError) as shape:
        run(bluesky(httpserver))
    assert shape.value.kind == "malformed"
    monkeypatch.delenv("TEST_BSKY_TOKEN", raising=False)
    with pytest.raises(SourceError) as auth:
        run(bluesky(httpserver, token_env="TEST_BSKY_TOKEN"))
    assert auth.value.kind == "auth"


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "2026-11-30T12:05:00.000Z"}, 301),
        ({"ratelimit-remaining": "0", "ratelimit-reset": "1796040300"}, 301),  # Bluesky: Unix
        ({"x-ratelimit-reset": "287"}, 288),  # Reddit: seconds
        ({}, None),
    ],
)
def test_rate_limit_resets_as_each_service_sends_them(
    headers: dict[str, str], seconds: float | None
) -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    assert now.timestamp() + 300 == 1796040300
    assert until_reset(httpx.Headers(headers), now) == seconds


def test_a_spent_rate_limit_window_means_resting_until_its_reset() -> None:
    now = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    spent = httpx.Headers({"x-rate-limit-remaining": "0", "x-rate-limit-reset": "1796040300"})
    assert slow_down(spent, now) == 301
    assert slow_down(httpx.Headers({"ratelimit-remaining": "250"}), now) is None
    assert slow_down(httpx.Headers({}), now) is None
