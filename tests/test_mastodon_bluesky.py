"""MastodonConnector and BlueskyConnector against loopback stand-ins for their APIs.

Bursts are built from the fixtures' real-shaped statuses and posts: each copy differs only in
its id, time, author and text, so every page is shaped as the service sends it.
"""

from __future__ import annotations

import copy
import json
import logging
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from fakes.sources import poll_once
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.base import SourceError
from connectors.bluesky import FOLLOWERS_TTL, BlueskyConnector, BlueskySource, FollowerCache
from connectors.http import slow_down, until_reset
from connectors.mastodon import MastodonConnector, MastodonSource
from connectors.payload import HighWater
from monitor.model import Cursor

FIXTURES = Path(__file__).parent / "fixtures"
TOKEN = "mastodon-secret-token"
TAG = "/api/v1/timelines/tag/Gridline"
NEWEST_STATUS = 113533901234567890  # the newest status of mastodon/tag.json
SEARCH = "/xrpc/app.bsky.feed.searchPosts"
PROFILES = "/xrpc/app.bsky.actor.getProfiles"
BSKY_QUERY = {"q": "skyways", "sort": "latest", "limit": "100"}
NEWEST_INDEXED = datetime(2024, 11, 24, 9, 30, 2, 456000, tzinfo=UTC)  # of bluesky/search.json
DANA = "at://did:plc:abc123/app.bsky.feed.post/3lbqz2xk7ss2a"


def load(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


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


def mastodon_cursor(**since: int) -> Cursor:
    return Cursor(cursor=json.dumps(since))


def iso_in(seconds: int) -> str:
    """A Mastodon ``X-RateLimit-Reset``: an ISO time with microseconds."""
    moment = datetime.now(UTC) + timedelta(seconds=seconds)
    return moment.isoformat(timespec="microseconds").replace("+00:00", "Z")


# --- Mastodon -----------------------------------------------------------------------------


def status_burst(size: int) -> list[dict[str, Any]]:
    """``size`` statuses newer than the fixture's, newest first."""
    template = load("mastodon/tag.json")[0]
    statuses = []
    for n in range(size, 0, -1):
        status = copy.deepcopy(template)
        status_id = str(NEWEST_STATUS + n * 65536)  # snowflake-like: time in the high bits
        status.update(
            id=status_id,
            uri=f"https://mastodon.social/users/mia/statuses/{status_id}",
            url=f"https://mastodon.social/@mia/{status_id}",
            content=f"<p>#Gridline outage on street {n}</p>",
        )
        statuses.append(status)
    return statuses


def serve_tag_pages(
    server: HTTPServer, statuses: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> None:
    """The hashtag timeline's pages of 40 since the fixture's newest status; a full page
    carries ``Link: rel="next"`` (with ``max_id``) and ``rel="prev"``, as Mastodon sends."""
    base = server.url_for(TAG)
    query = {"limit": "40", "since_id": str(NEWEST_STATUS)}
    for start in range(0, len(statuses), 40):
        page = statuses[start : start + 40]
        links = [f'<{base}?min_id={page[0]["id"]}>; rel="prev"']
        if len(page) == 40:
            links.insert(0, f'<{base}?max_id={page[-1]["id"]}>; rel="next"')
        server.expect_request(TAG, query_string=query).respond_with_json(
            page, headers={"Link": ", ".join(links), **(headers or {})}
        )
        query = query | {"max_id": page[-1]["id"]}


def test_mastodon_hashtag_statuses_become_mentions(httpserver: HTTPServer) -> None:
    statuses = load("mastodon/tag.json")
    httpserver.expect_request(TAG, query_string={"limit": "40"}).respond_with_json(statuses)
    first = poll_once(mastodon(httpserver))
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
    # the language is the one the author set on the status
    assert mia.language == "en" and mia.published_at is not None
    # a boost is read as the boosted status, with its author
    assert anna.text == "Gridline Störung schon wieder seit Stunden kein Strom"
    assert (anna.author, anna.language) == ("@anna@chaos.social", "de")

    httpserver.clear()
    httpserver.expect_request(
        TAG, query_string={"limit": "40", "since_id": str(NEWEST_STATUS)}
    ).respond_with_json([])
    assert poll_once(mastodon(httpserver), first.cursor).mentions == []


def test_mastodon_hashtag_timeline_pages_back_through_a_burst(httpserver: HTTPServer) -> None:
    httpserver.expect_request(TAG, query_string={"limit": "40"}).respond_with_json(
        load("mastodon/tag.json")
    )
    first = poll_once(mastodon(httpserver))
    burst = status_burst(90)
    httpserver.clear()
    serve_tag_pages(httpserver, burst)
    second = poll_once(mastodon(httpserver), first.cursor)
    assert [m.url for m in second.mentions] == [s["url"] for s in burst]
    assert (second.truncated, second.rest) == (None, None)
    assert len(httpserver.log) == 3  # 40, 40 and 10: the last page has no rel="next"
    assert json.loads(second.cursor.cursor or "") == {"tag:gridline": int(burst[0]["id"])}
    every = [m.external_id for poll in (first, second) for m in poll.mentions]
    assert len(every) == len(set(every)) == 92


def test_mastodon_max_pages_cuts_a_poll_short(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    burst = status_burst(90)
    serve_tag_pages(httpserver, burst)
    with caplog.at_level(logging.WARNING):
        result = poll_once(
            mastodon(httpserver, max_pages=2), mastodon_cursor(**{"tag:gridline": NEWEST_STATUS})
        )
    assert len(result.mentions) == 80 and result.truncated == 40
    assert any("missing=40" in r.getMessage() for r in caplog.records)
    assert json.loads(result.cursor.cursor or "") == {"tag:gridline": int(burst[0]["id"])}


def test_mastodon_rate_limit_window_stops_the_poll_and_the_other_feeds(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)
    spent = {
        "X-RateLimit-Limit": "300",
        "X-RateLimit-Remaining": "0",
        "X-RateLimit-Reset": iso_in(120),
    }
    serve_tag_pages(httpserver, status_burst(90), headers=spent)
    cursor = mastodon_cursor(**{"tag:gridline": NEWEST_STATUS, "search": 5})
    options = {"query": "gridline", "token_env": "TEST_MASTODON_TOKEN"}
    result = poll_once(mastodon(httpserver, **options), cursor)
    assert len(result.mentions) == 40 and result.truncated == 40
    assert result.rest == pytest.approx(121, abs=2)  # until the reset, plus a second
    assert [entry[0].path for entry in httpserver.log] == [TAG]  # the search waits its turn
    assert json.loads(result.cursor.cursor or "")["search"] == 5


def test_mastodon_search_reads_every_ranked_result_after_the_stored_id(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)
    options = {"hashtags": [], "query": "gridline", "token_env": "TEST_MASTODON_TOKEN"}
    # ranked by relevance, not time: the newest is on page 2, and an old status ranks on page
    # 1 — which does not mean the rest is old, as it would in a timeline
    burst = status_burst(85)
    ranked = [*burst[1:10], load("mastodon/tag.json")[0], *burst[10:60], burst[0], *burst[60:]]
    query = {"q": "gridline", "type": "statuses", "resolve": "false", "limit": "40"}
    query |= {"min_id": str(NEWEST_STATUS)}  # search has no since_id; min_id filters
    for offset in (0, 40, 80):
        httpserver.expect_request(
            "/api/v2/search",
            headers={"Authorization": f"Bearer {TOKEN}"},
            query_string=query | ({"offset": str(offset)} if offset else {}),
        ).respond_with_json(
            {"accounts": [], "statuses": ranked[offset : offset + 40], "hashtags": []}
        )
    result = poll_once(mastodon(httpserver, **options), mastodon_cursor(search=NEWEST_STATUS))
    assert sorted(m.url for m in result.mentions) == sorted(s["url"] for s in burst)
    assert len(httpserver.log) == 3 and result.truncated is None
    assert json.loads(result.cursor.cursor or "") == {"search": NEWEST_STATUS + 85 * 65536}


def test_mastodon_search_needs_and_sends_the_token(
    httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {"hashtags": [], "query": "gridline", "token_env": "TEST_MASTODON_TOKEN"}
    monkeypatch.delenv("TEST_MASTODON_TOKEN", raising=False)
    with pytest.raises(SourceError) as missing:
        poll_once(mastodon(httpserver, **options))
    assert missing.value.kind == "auth" and "TEST_MASTODON_TOKEN" in str(missing.value)
    monkeypatch.setenv("TEST_MASTODON_TOKEN", TOKEN)
    statuses = load("mastodon/tag.json")
    httpserver.expect_request(
        "/api/v2/search",
        headers={"Authorization": f"Bearer {TOKEN}"},
        query_string={"q": "gridline", "type": "statuses", "resolve": "false", "limit": "40"},
    ).respond_with_json({"accounts": [], "statuses": statuses[:1], "hashtags": []})
    assert [m.author for m in poll_once(mastodon(httpserver, **options)).mentions] == ["@mia"]


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
    respond(httpserver.expect_request(TAG))
    with pytest.raises(SourceError) as error:
        poll_once(mastodon(httpserver))
    assert error.value.kind == kind


# --- Bluesky ------------------------------------------------------------------------------


class ProfilesService:
    """``app.bsky.actor.getProfiles``: answers for every DID asked (``actors``, repeated), with
    a follower count derived from the DID, and records each call's DIDs."""

    def __init__(self, server: HTTPServer) -> None:
        self.calls: list[list[str]] = []
        self.template = load("bluesky/profiles.json")["profiles"]
        server.expect_request(PROFILES).respond_with_handler(self.respond)

    def respond(self, request: Request) -> Response:
        actors = request.args.getlist("actors")
        self.calls.append(actors)
        known = {p["did"]: p for p in self.template}
        profiles = [known.get(did) or self.profile(did) for did in actors]
        return Response(json.dumps({"profiles": profiles}), content_type="application/json")

    def profile(self, did: str) -> dict[str, Any]:
        handle = did.rsplit(":", 1)[-1]
        return copy.deepcopy(self.template[0]) | {
            "did": did,
            "handle": f"{handle}.bsky.social",
            "displayName": handle,
            "followersCount": followers(did),
        }


def followers(did: str) -> int:
    return 1000 + int(did[-2:])


def post_burst(size: int, authors: int) -> list[dict[str, Any]]:
    """``size`` posts newer than the fixture's, newest first, by ``authors`` accounts."""
    template = load("bluesky/search.json")["posts"][0]
    posts = []
    for n in range(size, 0, -1):
        post = copy.deepcopy(template)
        did = f"did:plc:burst{n % authors:02d}"
        moment = NEWEST_INDEXED + timedelta(seconds=n)
        stamp = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        post.update(uri=f"at://{did}/app.bsky.feed.post/3lc{n:07d}", cid=f"bafyreiburst{n}")
        post["author"].update(did=did, handle=f"burst{n % authors:02d}.bsky.social")
        post["record"].update(text=f"SkyWays stranded us at gate {n}", createdAt=stamp)
        post["indexedAt"] = stamp
        posts.append(post)
    return posts


def serve_bluesky_pages(
    server: HTTPServer, posts: list[dict[str, Any]], headers: dict[str, str] | None = None
) -> int:
    """searchPosts' pages of 100 ``since`` the fixture's newest post, which comes again last
    (``since`` is inclusive); ``cursor`` while hits remain.  Returns ``hitsTotal``."""
    matching = posts + load("bluesky/search.json")["posts"][:1]
    query = BSKY_QUERY | {"since": "2024-11-24T09:30:02.456000Z"}
    for start in range(0, len(matching), 100):
        body: dict[str, Any] = {"hitsTotal": len(matching), "posts": matching[start : start + 100]}
        if start + 100 < len(matching):
            body["cursor"] = str(start + 100)
        paged = query | ({"cursor": str(start)} if start else {})
        server.expect_request(SEARCH, query_string=paged).respond_with_json(body, headers=headers)
    return len(matching)


def test_bluesky_posts_become_mentions_and_are_not_reported_twice(httpserver: HTTPServer) -> None:
    body = load("bluesky/search.json")
    httpserver.expect_request(SEARCH, query_string=BSKY_QUERY).respond_with_json(body)
    profiles = ProfilesService(httpserver)
    first = poll_once(bluesky(httpserver))
    dana, ola = first.mentions
    assert dana.url == "https://bsky.app/profile/dana.bsky.social/post/3lbqz2xk7ss2a"
    assert (dana.author, dana.author_followers, dana.likes, dana.reposts, dana.replies) == (
        "@dana.bsky.social",
        15300,  # from getProfiles: search results carry no follower counts
        40,
        15,
        4,
    )
    # the languages the authors set on their posts
    assert dana.language == "en" and dana.published_at is not None
    assert dana.published_at.isoformat().startswith("2024-11-24T09:30:01")
    assert (ola.author_followers, ola.language) == (87, "pl")
    assert profiles.calls == [["did:plc:abc123", "did:plc:def456"]]

    httpserver.clear()
    newer = dict(
        body["posts"][1],
        uri="at://did:plc:def456/app.bsky.feed.post/3new",
        indexedAt="2024-11-24T09:31:00Z",
    )
    httpserver.expect_request(
        SEARCH, query_string=BSKY_QUERY | {"since": "2024-11-24T09:30:02.456000Z"}
    ).respond_with_json({"hitsTotal": 2, "posts": [newer, body["posts"][0]]})
    ProfilesService(httpserver)
    again = poll_once(bluesky(httpserver), first.cursor)
    assert [m.external_id for m in again.mentions] == [
        "at://did:plc:def456/app.bsky.feed.post/3new"
    ]


def test_bluesky_pages_back_through_a_burst_and_looks_up_followers_in_batches(
    httpserver: HTTPServer,
) -> None:
    connector = bluesky(httpserver)
    httpserver.expect_request(SEARCH, query_string=BSKY_QUERY).respond_with_json(
        load("bluesky/search.json")
    )
    profiles = ProfilesService(httpserver)
    first = poll_once(connector)
    burst = post_burst(150, authors=30)
    httpserver.clear()
    total = serve_bluesky_pages(httpserver, burst)
    profiles = ProfilesService(httpserver)
    second = poll_once(connector, first.cursor)
    assert [m.external_id for m in second.mentions] == [p["uri"] for p in burst]
    assert second.truncated is None and total == 151
    assert (
        HighWater.load(second.cursor.cursor).newest
        == (NEWEST_INDEXED + timedelta(seconds=150)).timestamp()
    )
    # 30 authors, none known: two calls of at most 25
    assert [len(call) for call in profiles.calls] == [25, 5]
    assert all(
        m.author_followers == followers(m.external_id.split("/")[2]) for m in second.mentions
    )

    # the same authors again: their counts are cached
    newest = post_burst(153, authors=30)[:3]
    httpserver.clear()
    httpserver.expect_request(SEARCH).respond_with_json({"hitsTotal": 4, "posts": newest})
    profiles = ProfilesService(httpserver)
    third = poll_once(connector, second.cursor)
    assert len(third.mentions) == 3 and profiles.calls == []
    assert all(m.author_followers is not None for m in third.mentions)
    every = [m.external_id for poll in (first, second, third) for m in poll.mentions]
    assert len(every) == len(set(every)) == 155

    # a day later they are asked for again
    started = time.monotonic()
    connector.followers.clock = lambda: started + FOLLOWERS_TTL
    fourth = poll_once(connector, second.cursor)
    assert len(fourth.mentions) == 3 and [len(call) for call in profiles.calls] == [3]


def test_bluesky_max_pages_reports_what_hits_total_says_is_left(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    mark = HighWater(NEWEST_INDEXED.timestamp(), frozenset({DANA})).dump()
    total = serve_bluesky_pages(httpserver, post_burst(150, authors=30))
    ProfilesService(httpserver)
    with caplog.at_level(logging.WARNING):
        result = poll_once(bluesky(httpserver, max_pages=1), mark)
    assert len(result.mentions) == 100 and result.truncated == total - 100 == 51
    assert any("missing=51" in r.getMessage() for r in caplog.records)


def test_bluesky_rate_limit_window_stops_paging_and_profile_lookups(
    httpserver: HTTPServer,
) -> None:
    mark = HighWater(NEWEST_INDEXED.timestamp(), frozenset({DANA})).dump()
    spent = {
        "ratelimit-limit": "3000",
        "ratelimit-remaining": "0",
        "ratelimit-reset": str(int(time.time()) + 300),
        "ratelimit-policy": "3000;w=300",
    }
    serve_bluesky_pages(httpserver, post_burst(150, authors=30), headers=spent)
    profiles = ProfilesService(httpserver)
    result = poll_once(bluesky(httpserver), mark)
    assert len(result.mentions) == 100 and result.truncated == 51
    assert result.rest == pytest.approx(301, abs=2)
    assert profiles.calls == [] and all(m.author_followers is None for m in result.mentions)


def test_bluesky_keeps_posts_when_the_follower_lookup_fails(
    httpserver: HTTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    httpserver.expect_request(SEARCH).respond_with_json(load("bluesky/search.json"))
    httpserver.expect_request(PROFILES).respond_with_json(
        {"error": "InternalServerError", "message": "Internal Server Error"}, status=500
    )
    with caplog.at_level(logging.WARNING):
        result = poll_once(bluesky(httpserver))
    assert [m.author_followers for m in result.mentions] == [None, None]
    assert any("follower lookup failed" in r.getMessage() for r in caplog.records)


def test_follower_cache_is_bounded_and_expires() -> None:
    now = [0.0]
    cache = FollowerCache(ttl=60, size=2, clock=lambda: now[0])
    for did, count in [("a", 1), ("b", 2), ("c", 3)]:
        cache.put(did, count)
    assert [cache.get(did) for did in "abc"] == [None, 2, 3]  # the oldest made room
    now[0] = 60
    assert cache.get("b") is None


def test_bluesky_errors(httpserver: HTTPServer, monkeypatch: pytest.MonkeyPatch) -> None:
    httpserver.expect_request(SEARCH).respond_with_json(
        {"error": "InvalidRequest", "message": 'Error: Params must have the property "q"'},
        status=400,
    )
    with pytest.raises(SourceError) as bad:
        poll_once(bluesky(httpserver))
    assert bad.value.kind == "http_4xx"
    httpserver.clear()
    httpserver.expect_request(SEARCH).respond_with_json({"posts": "x"})
    with pytest.raises(SourceError) as shape:
        poll_once(bluesky(httpserver))
    assert shape.value.kind == "malformed"
    monkeypatch.delenv("TEST_BSKY_TOKEN", raising=False)
    with pytest.raises(SourceError) as auth:
        poll_once(bluesky(httpserver, token_env="TEST_BSKY_TOKEN"))
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
