"""InstagramConnector against the stand-in Graph API of test_facebook_page.py (``FakeGraph``)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fakes.graph import BASE, FakeGraph, Reply
from pydantic import ValidationError

from connectors.base import SourceError
from connectors.instagram import MAX_HASHTAGS, InstagramConnector, InstagramSource
from monitor.config import parse_config
from monitor.model import Cursor
from monitor.plugins import connector_class

FIXTURES = Path(__file__).parent / "fixtures" / "instagram"
TOKEN = "IGQVJtestInstagramToken0123456789SECRET"
ACCOUNT = "17841400000000001"
SUMMER, QUIET, CHEFS = "17900000000000011", "17900000000000012", "17900000000000013"
TAG_ID = "17843000000000777"


@pytest.fixture(autouse=True)
def token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("INSTAGRAM_TOKEN", TOKEN)


@pytest.fixture
def graph() -> FakeGraph:
    return FakeGraph(FIXTURES)


def connector(**options: object) -> InstagramConnector:
    config = InstagramSource.model_validate(
        {"name": "ig-acme", "type": "instagram", "ig_user_id": ACCOUNT, "base_url": BASE} | options
    )
    return InstagramConnector(config)


def serve(
    graph: FakeGraph, media: str = "media.json", comments: str = "comments.json"
) -> FakeGraph:
    return (
        graph.on(ACCOUNT, "account.json")
        .on(f"{ACCOUNT}/media", media)
        .on(f"{SUMMER}/comments", comments)
        .on(f"{CHEFS}/comments", "chef_comments.json")
        .on(f"{ACCOUNT}/tags", "tags.json")
        .on("ig_hashtag_search", "hashtag_search.json")
        .on(f"{TAG_ID}/recent_media", "recent_media.json")
    )


# --- comments ----------------------------------------------------------------------------------


def test_comments_and_replies_on_the_accounts_media(graph: FakeGraph) -> None:
    result = serve(graph).run(connector(tags=False))

    # Comments are read for the media that have any; the account's own reply is the brand
    # speaking and a comment without text makes no mention; the media are not mentions.
    assert graph.paths() == [ACCOUNT, f"{ACCOUNT}/media", f"{SUMMER}/comments", f"{CHEFS}/comments"]
    assert [m.external_id for m in result.mentions] == [
        "ig-comment:18000000000000101",
        "ig-comment:18000000000000102",
        "ig-comment:18000000000000201",
    ]
    comment, reply, chef = result.mentions
    assert {m.source_type for m in result.mentions} == {"instagram"}
    assert comment.text == "Where is my order?? Two hours late\n— on @acmefoods's post"
    assert comment.author == "@jane.roe"
    assert comment.likes == 4
    # A comment links to its post, told apart by its id (storage keeps one mention per link).
    assert comment.url == "https://www.instagram.com/p/C7aBcDeFgHi/?comment_id=18000000000000101"
    assert comment.extra == {
        "ig_user_id": ACCOUNT,
        "media_id": SUMMER,
        "media_url": "https://www.instagram.com/p/C7aBcDeFgHi/",
    }
    assert reply.extra["parent_id"] == "18000000000000101"
    assert reply.url.endswith("?comment_id=18000000000000102")
    assert chef.published_at is not None and chef.published_at.isoformat() == (
        "2024-06-01T12:00:00+00:00"
    )

    for request in graph.requests:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        assert "access_token" not in request.url.params
    [media] = graph.asked(f"{ACCOUNT}/media")
    assert media.url.params["limit"] == "25"
    assert "comments_count" in media.url.params["fields"]
    [comments] = graph.asked(f"{SUMMER}/comments")
    assert "replies" in comments.url.params["fields"]


def test_only_media_whose_comment_count_changed_are_read_again(graph: FakeGraph) -> None:
    first = serve(graph).run(connector(tags=False))

    quiet = serve(FakeGraph(FIXTURES))
    assert quiet.run(connector(tags=False), first.cursor).mentions == []
    assert quiet.paths() == [f"{ACCOUNT}/media"]  # the username is kept, no comment is read

    busier = serve(FakeGraph(FIXTURES), "media_more_comments.json", "comments_more.json")
    result = busier.run(connector(tags=False), first.cursor)
    assert busier.paths() == [f"{ACCOUNT}/media", f"{SUMMER}/comments"]
    assert [m.external_id for m in result.mentions] == ["ig-comment:18000000000000105"]
    state = json.loads(result.cursor.cursor or "")
    assert set(state["media"]) == {SUMMER, QUIET, CHEFS}  # only the watched media are kept
    assert state["media"][SUMMER]["count"] == 4


def test_a_rate_limit_while_reading_comments_keeps_the_rest_for_later(graph: FakeGraph) -> None:
    serve(graph)
    graph.routes[f"{CHEFS}/comments"] = []
    graph.on(f"{CHEFS}/comments", "instagram_rate_limit.json", status=400)
    result = graph.run(connector(tags=False))

    assert [m.external_id for m in result.mentions][:1] == ["ig-comment:18000000000000101"]
    assert result.rest is not None and result.rest > 0
    state = json.loads(result.cursor.cursor or "")
    assert state["media"][CHEFS] == {}  # its count is not stored: read next poll
    assert state["media"][SUMMER]["count"] == 3


# --- tags and hashtags -------------------------------------------------------------------------


def test_media_that_tag_the_account(graph: FakeGraph) -> None:
    result = serve(graph).run(connector(comments=False))

    [tagged] = result.mentions
    assert tagged.external_id == "ig:17900000000000021"
    assert tagged.text == "Burger night with the crew\n— tags @acmefoods"
    assert tagged.author == "@gus.zoe"
    assert tagged.url == "https://www.instagram.com/p/C7TaGgEdOne/"
    assert (tagged.likes, tagged.replies) == (15, 2)
    assert tagged.extra["found_by"] == "tags"


def test_a_hashtag_is_searched_once_then_its_recent_media_are_read(graph: FakeGraph) -> None:
    options = {"comments": False, "tags": False, "hashtags": ["#AcmeFoods"]}
    first = serve(graph).run(connector(**options))

    [hair] = first.mentions  # the medium without a caption makes no mention
    assert hair.external_id == "ig:17900000000000031"
    assert hair.author is None  # hashtag media carry no author
    assert hair.extra["found_by"] == "hashtag:acmefoods"
    [search] = graph.asked("ig_hashtag_search")
    assert dict(search.url.params) == {"user_id": ACCOUNT, "q": "acmefoods"}
    [recent] = graph.asked(f"{TAG_ID}/recent_media")
    assert recent.url.params["user_id"] == ACCOUNT
    state = json.loads(first.cursor.cursor or "")
    assert state["hashtag_ids"] == {"acmefoods": TAG_ID}

    again = serve(FakeGraph(FIXTURES))
    assert again.run(connector(**options), first.cursor).mentions == []
    assert again.paths() == [f"{TAG_ID}/recent_media"]  # no search: the id is in the cursor

    # A hashtag no longer configured is forgotten; a new one is searched.
    other = serve(FakeGraph(FIXTURES))
    result = other.run(connector(**options | {"hashtags": ["acmeburgers"]}), first.cursor)
    assert other.asked("ig_hashtag_search")[0].url.params["q"] == "acmeburgers"
    assert set(json.loads(result.cursor.cursor or "")["hashtag_ids"]) == {"acmeburgers"}


def test_an_unknown_hashtag_is_logged_and_skipped(
    graph: FakeGraph, caplog: pytest.LogCaptureFixture
) -> None:
    serve(graph)
    graph.routes["ig_hashtag_search"] = []
    graph.on("ig_hashtag_search")  # {"data": []}
    result = graph.run(connector(comments=False, tags=False, hashtags=["nosuchtag"]))
    assert result.mentions == []
    assert "hashtag not found source=ig-acme hashtag=nosuchtag" in caplog.text
    assert json.loads(result.cursor.cursor or "")["hashtag_ids"] == {}


# --- errors and configuration ------------------------------------------------------------------


def test_an_expired_token_is_an_auth_error_without_the_token() -> None:
    graph = FakeGraph(FIXTURES.parent / "facebook_page")  # the Graph API's errors are one
    graph.on(ACCOUNT, "token_expired.json", status=400)
    with pytest.raises(SourceError) as caught:
        graph.run(connector())
    assert caught.value.kind == "auth"
    assert "code 190, subcode 463" in str(caught.value)
    assert TOKEN not in str(caught.value)


def test_hashtags_are_normalised_and_at_most_thirty() -> None:
    source = connector(hashtags=["#AcmeFoods", "acmefoods", " acme_burgers "]).config
    assert source.hashtags == ["acmefoods", "acme_burgers"]
    tags = [f"tag{number}" for number in range(MAX_HASHTAGS + 1)]
    with pytest.raises(ValidationError, match="at most 30 unique hashtags in 7 days"):
        connector(hashtags=tags)
    assert len(connector(hashtags=tags[:MAX_HASHTAGS]).config.hashtags) == MAX_HASHTAGS
    for bad in (["acme foods"], ["#"], ["acme/../me"]):
        with pytest.raises(ValidationError):
            connector(hashtags=bad)
    with pytest.raises(ValidationError):
        connector(ig_user_id="me")


def test_config_is_checked_and_registered() -> None:
    assert connector_class("instagram") is InstagramConnector
    tags = ", ".join(f'"tag{number}"' for number in range(31))
    text = f"""
[[brands]]
name = "Acme"
keywords = ["acme"]
handles = ["acmefoods"]

[[sources]]
type = "instagram"
name = "ig"
ig_user_id = "{ACCOUNT}"
hashtags = [{tags}]
"""
    with pytest.raises(Exception, match="30 unique hashtags"):
        parse_config(text, "brandmon.toml")
    config = parse_config(text.replace(', "tag30"', ""), "brandmon.toml")
    assert config.source_secrets() == [("ig", "token_env", "INSTAGRAM_TOKEN")]


def test_a_cursor_from_elsewhere_starts_afresh(graph: FakeGraph) -> None:
    for cursor in ("not json", "[1]", '{"media": [1], "tags": "x", "hashtag_ids": 3}'):
        result = serve(FakeGraph(FIXTURES)).run(connector(hashtags=["acmefoods"]), Cursor(cursor))
        assert len(result.mentions) == 5


def test_a_media_listing_that_is_not_a_list_is_malformed(graph: FakeGraph) -> None:
    serve(graph)
    graph.routes[f"{ACCOUNT}/media"] = []
    graph.routes[f"{ACCOUNT}/media"] = [Reply(b'{"data": {"id": "1"}}')]
    with pytest.raises(SourceError) as caught:
        graph.run(connector(tags=False))
    assert caught.value.kind == "malformed"
