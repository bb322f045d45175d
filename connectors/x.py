"""X (Twitter) API v2 recent search: posts of the last seven days that match a query.

The bearer token travels in the ``Authorization`` header, which the HTTP layer never mentions in
an error.  Post ids grow with time, so the cursor is the newest id seen.  A poll asks for posts
``since_id`` the cursor and pages back (``next_token``, 100 posts a page, newest first) by the
rule every paged connector follows (``connectors.reddit.page_back``): until it reaches the
cursor, at most ``max_pages`` pages, and only while the rate-limit window lasts — when
``x-rate-limit-remaining`` runs out the poll stops and asks for a rest until
``x-rate-limit-reset``.  A poll cut short by either bound says so (``PollResult.truncated``: at
least a page of posts is not fetched) and logs a warning.  The first poll (no cursor) takes one
page: the newest 100 posts, not the week's history.  Recent search only reaches back seven days
and refuses an older ``since_id``, so after a longer outage the cursor is left out of the
request and only used to drop posts already seen, and to stop paging.

Reposts (retweets) come as the reposter's own post whose ``text`` is "RT @author: " and the
original's text cut to 140 characters, and whose ``public_metrics`` are the original's.  The
original is in ``includes.tweets``: its full text is used, but the repost counts with its own
author's followers and no engagement of its own, so one viral post reposted a hundred times is
not a hundred high-reach mentions.  Quotes and replies are their authors' own posts, with their
own metrics.  Each post notes the post it reposts, quotes or answers in ``extra``
(``retweeted_id``/``retweeted_url``, ``quoted_…``, ``replied_to_…``).

A 429 carries ``x-rate-limit-reset`` rather than ``Retry-After``: the HTTP layer rests exactly
until that time.
"""

from __future__ import annotations

import html
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import httpx
from pydantic import Field

from connectors.base import PollResult, secret
from connectors.http import fetch_json_page
from connectors.paging import Item, Page, page_back
from connectors.payload import Json, count, malformed, obj, objects, parse_time, string
from monitor.config import Duration, EnvName, HttpUrl, Query, SourceBase
from monitor.model import Cursor, RawMention, utcnow

PAGE_SIZE = 100
SEARCH_REACH = timedelta(days=7) - timedelta(hours=1)
"""How old a ``since_id`` may be: recent search covers seven days (an hour's margin)."""
SNOWFLAKE_EPOCH_MS = 1288834974657
"""Post ids are snowflakes: their top bits are milliseconds since this moment."""
TWEET_FIELDS = (
    "created_at,public_metrics,lang,author_id,conversation_id,note_tweet,referenced_tweets"
)
EXPANSIONS = "author_id,referenced_tweets.id,referenced_tweets.id.author_id"
USER_FIELDS = "username,name,public_metrics,verified"
REPOST_PREFIX = re.compile(r"RT @\w+: ")
Engagement = tuple[int | None, int | None, int | None, int | None]
"""A post's own likes, reposts (retweets and quotes), replies and views."""
NO_ENGAGEMENT: Engagement = (0, 0, 0, 0)


class XSource(SourceBase):
    """X API v2 recent search, with author follower counts."""

    type: Literal["x"]
    query: Query
    bearer_token_env: EnvName = "X_BEARER_TOKEN"
    base_url: HttpUrl = "https://api.x.com/2"
    interval: Duration = timedelta(minutes=15)
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 posts one poll may read to get back to the newest post of the last one."""


class XConnector:
    """One ``type = "x"`` source."""

    type = "x"
    settings = XSource

    def __init__(self, config: XSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        token = secret(self.config.bearer_token_env)
        seen = _post_id(cursor.cursor)
        params = {
            "query": self.config.query,
            "max_results": str(PAGE_SIZE),
            "tweet.fields": TWEET_FIELDS,
            "expansions": EXPANSIONS,
            "user.fields": USER_FIELDS,
        }
        if seen is not None and _posted_at(seen) > utcnow() - SEARCH_REACH:
            params["since_id"] = str(seen)

        users: dict[str, Json] = {}
        referenced: dict[str, Json] = {}
        paged = await page_back(
            self.name,
            lambda query: self._page(client, query, token, users, referenced),
            params,
            is_new=lambda item: seen is None or item.order > seen,
            resuming=seen is not None,
            max_pages=self.config.max_pages,
            page_size=PAGE_SIZE,
        )
        mentions = [self._mention(item.id, item.data, users, referenced) for item in paged.items]
        newest = max((int(item.id) for item in paged.items), default=seen)  # all new are newer
        return PollResult(
            mentions=mentions,
            cursor=Cursor(cursor=None if newest is None else str(newest)),
            truncated=paged.truncated,
            rest=paged.rest,
        )

    async def _page(
        self,
        client: httpx.AsyncClient,
        params: dict[str, str],
        token: str,
        users: dict[str, Json],
        referenced: dict[str, Json],
    ) -> Page:
        """One page of posts; the users and posts they refer to are added to ``users`` and
        ``referenced``."""
        url = f"{self.config.base_url.rstrip('/')}/tweets/search/recent"
        response = await fetch_json_page(
            client, url, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        body = response.body
        if not isinstance(body, dict):
            raise malformed(url, "an object")
        data = body.get("data", [])  # absent when nothing matched
        includes = body.get("includes", {})
        if not isinstance(includes, dict):
            raise malformed(url, "'includes' as an object")
        page_users, page_referenced = includes.get("users", []), includes.get("tweets", [])
        meta = body.get("meta", {})
        if not objects(data):
            raise malformed(url, "'data' as a list of posts")
        if not objects(page_users):
            raise malformed(url, "'includes.users' as a list of users")
        if not objects(page_referenced):
            raise malformed(url, "'includes.tweets' as a list of posts")
        if not isinstance(meta, dict):
            raise malformed(url, "'meta' as an object")
        users.update(_by_id(page_users))
        referenced.update(_by_id(page_referenced))
        next_token = string(meta, "next_token")
        return Page(
            items=[
                Item(post_id, str(post_id), post)
                for post in data
                if (post_id := _post_id(post.get("id"))) is not None
            ],
            next={**params, "next_token": next_token} if next_token else None,
            headers=response.headers,
        )

    def _mention(
        self, post_id: str, post: Json, users: Mapping[str, Json], referenced: Mapping[str, Json]
    ) -> RawMention:
        user = users.get(string(post, "author_id") or "", {})
        username = string(user, "username")
        links = _references(post)
        extra: dict[str, str] = {}
        for kind, other_id in links.items():
            author = users.get(string(referenced.get(other_id, {}), "author_id") or "", {})
            extra[f"{kind}_id"] = other_id
            extra[f"{kind}_url"] = _url(other_id, string(author, "username"))
        text = _text(post)
        original = referenced.get(links.get("retweeted", ""))
        if original is not None:
            prefix = REPOST_PREFIX.match(text)
            text = (prefix[0] if prefix else "") + _text(original)
        likes, reposts, replies, views = (
            NO_ENGAGEMENT if "retweeted" in links else _engagement(post)
        )
        language = string(post, "lang")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=post_id,
            url=_url(post_id, username),
            text=html.unescape(text),  # X escapes &, < and > in post text
            author=f"@{username}" if username else None,
            author_followers=count(obj(user, "public_metrics").get("followers_count")),
            language=None if language == "und" else language,
            published_at=parse_time(string(post, "created_at")),
            likes=likes,
            reposts=reposts,
            replies=replies,
            views=views,
            extra=extra,
        )


def _engagement(post: Json) -> Engagement:
    metrics = obj(post, "public_metrics")
    shares = [count(metrics.get(key)) for key in ("retweet_count", "quote_count")]
    known_shares = [share for share in shares if share is not None]
    return (
        count(metrics.get("like_count")),
        sum(known_shares) if known_shares else None,
        count(metrics.get("reply_count")),
        count(metrics.get("impression_count")),
    )


def _references(post: Json) -> dict[str, str]:
    """The posts ``post`` reposts (``retweeted``), quotes (``quoted``) or answers
    (``replied_to``), by kind."""
    links = post.get("referenced_tweets")
    if not objects(links):
        return {}
    return {
        kind: other_id
        for link in links
        if (kind := string(link, "type")) and (other_id := string(link, "id"))
    }


def _text(post: Json) -> str:
    """A post's whole text: a long post's ``text`` is cut, its ``note_tweet`` is not."""
    return string(obj(post, "note_tweet"), "text") or string(post, "text") or ""


def _url(post_id: str, username: str | None) -> str:
    return f"https://x.com/{username or 'i/web'}/status/{post_id}"


def _by_id(items: list[Json]) -> dict[str, Json]:
    return {item["id"]: item for item in items if isinstance(item.get("id"), str)}


def _post_id(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _posted_at(post_id: int) -> datetime:
    return datetime.fromtimestamp(((post_id >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, UTC)
