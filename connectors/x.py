"""X (Twitter) API v2 recent search: posts of the last seven days that match a query.

The bearer token travels in the ``Authorization`` header, which the HTTP layer never mentions in
an error.  Post ids grow with time, so the cursor is the newest id seen; later polls send it as
``since_id`` and follow ``next_token`` for at most ``MAX_PAGES`` pages of 100 (the first poll
takes one page).  Recent search only reaches back seven days and refuses an older ``since_id``,
so after a longer outage the cursor is left out of the request and only used to drop posts
already seen.

A 429 carries ``x-rate-limit-reset`` rather than ``Retry-After``: the HTTP layer rests exactly
until that time.
"""

from __future__ import annotations

import html
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from connectors.base import Cursor, PollResult, SourceError
from connectors.http import fetch_json
from connectors.payload import Json, count, malformed, obj, objects, parse_time, string
from monitor.config import XSource
from monitor.model import RawMention, utcnow

MAX_PAGES = 5
SEARCH_REACH = timedelta(days=7) - timedelta(hours=1)
"""How old a ``since_id`` may be: recent search covers seven days (an hour's margin)."""
SNOWFLAKE_EPOCH_MS = 1288834974657
"""Post ids are snowflakes: their top bits are milliseconds since this moment."""
TWEET_FIELDS = "created_at,public_metrics,lang,author_id,conversation_id,note_tweet"
USER_FIELDS = "username,name,public_metrics,verified"


class XConnector:
    """One ``type = "x"`` source."""

    type = "x"

    def __init__(self, config: XSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        variable = self.config.bearer_token_env
        token = os.environ.get(variable)
        if not token:
            raise SourceError("auth", f"environment variable {variable} is not set")
        seen = _post_id(cursor.cursor)
        params = {
            "query": self.config.query,
            "max_results": "100",
            "tweet.fields": TWEET_FIELDS,
            "expansions": "author_id",
            "user.fields": USER_FIELDS,
        }
        if seen is not None and _posted_at(seen) > utcnow() - SEARCH_REACH:
            params["since_id"] = str(seen)

        posts: dict[int, Json] = {}
        users: dict[str, Json] = {}
        newest_ids = [] if seen is None else [seen]  # the cursor is the largest id of all
        for _ in range(MAX_PAGES if seen is not None else 1):
            data, page_users, meta = await self._page(client, params, token)
            users.update(
                (user["id"], user) for user in page_users if isinstance(user.get("id"), str)
            )
            for post in data:
                post_id = _post_id(post.get("id"))
                if post_id is not None and (seen is None or post_id > seen):
                    posts.setdefault(post_id, post)
            if (page_newest := _post_id(meta.get("newest_id"))) is not None:
                newest_ids.append(page_newest)
            next_token = meta.get("next_token")
            if not (isinstance(next_token, str) and next_token):
                break
            params["next_token"] = next_token

        mentions = [self._mention(post_id, post, users) for post_id, post in posts.items()]
        cursor_id = max([*newest_ids, *posts], default=None)
        return PollResult(
            mentions=mentions, cursor=Cursor(cursor=None if cursor_id is None else str(cursor_id))
        )

    async def _page(
        self, client: httpx.AsyncClient, params: dict[str, str], token: str
    ) -> tuple[list[Json], list[Json], Json]:
        """One page of results: posts, their authors and the paging metadata."""
        url = f"{self.config.base_url.rstrip('/')}/tweets/search/recent"
        body = await fetch_json(
            client, url, params=params, headers={"Authorization": f"Bearer {token}"}
        )
        if not isinstance(body, dict):
            raise malformed(url, "an object")
        data = body.get("data", [])  # absent when nothing matched
        includes = body.get("includes", {})
        users = includes.get("users", []) if isinstance(includes, dict) else None
        meta = body.get("meta", {})
        if not objects(data):
            raise malformed(url, "'data' as a list of posts")
        if not objects(users):
            raise malformed(url, "'includes.users' as a list of users")
        if not isinstance(meta, dict):
            raise malformed(url, "'meta' as an object")
        return data, users, meta

    def _mention(self, post_id: int, post: Json, users: dict[str, Json]) -> RawMention:
        user = users.get(string(post, "author_id") or "", {})
        username = string(user, "username")
        metrics = obj(post, "public_metrics")
        shares = [count(metrics.get(key)) for key in ("retweet_count", "quote_count")]
        known_shares = [count for count in shares if count is not None]
        text = string(obj(post, "note_tweet"), "text") or string(post, "text") or ""
        language = string(post, "lang")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=str(post_id),
            url=f"https://x.com/{username or 'i/web'}/status/{post_id}",
            text=html.unescape(text),  # X escapes &, < and > in post text
            author=f"@{username}" if username else None,
            author_followers=count(obj(user, "public_metrics").get("followers_count")),
            likes=count(metrics.get("like_count")),
            reposts=sum(known_shares) if known_shares else None,
            replies=count(metrics.get("reply_count")),
            views=count(metrics.get("impression_count")),
            language=None if language == "und" else language,
            published_at=parse_time(string(post, "created_at")),
        )


def _post_id(value: Any) -> int | None:
    return int(value) if isinstance(value, str) and value.isdigit() else None


def _posted_at(post_id: int) -> datetime:
    return datetime.fromtimestamp(((post_id >> 22) + SNOWFLAKE_EPOCH_MS) / 1000, UTC)
