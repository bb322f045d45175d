"""Bluesky: ``app.bsky.feed.searchPosts`` on an AppView (the public one needs no account).

Posts are asked for newest first and ``since`` the newest index time seen; the ids seen at that
time are kept too, so a restart repeats nothing and misses nothing the newest 100 still hold.
Author follower counts are used where the AppView includes them; quotes count as reposts.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

import httpx

from connectors.base import Cursor, PollResult, SourceError
from connectors.http import fetch_json
from connectors.payload import HighWater, Json, count, malformed, obj, objects, parse_time, string
from monitor.config import BlueskySource
from monitor.model import RawMention


class BlueskyConnector:
    """One ``type = "bluesky"`` source."""

    type = "bluesky"

    def __init__(self, config: BlueskySource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        url = f"{self.config.base_url.rstrip('/')}/xrpc/app.bsky.feed.searchPosts"
        mark = HighWater.load(cursor.cursor)
        params = {"q": self.config.query, "sort": "latest", "limit": "100"}
        if self.config.lang:
            params["lang"] = self.config.lang
        if mark.newest:
            since = datetime.fromtimestamp(mark.newest, UTC)
            params["since"] = since.isoformat().replace("+00:00", "Z")
        headers = None
        if self.config.token_env:
            token = os.environ.get(self.config.token_env)
            if not token:
                raise SourceError(
                    "auth", f"environment variable {self.config.token_env} is not set"
                )
            headers = {"Authorization": f"Bearer {token}"}
        body = await fetch_json(client, url, params=params, headers=headers)
        posts = body.get("posts") if isinstance(body, dict) else None
        if not objects(posts):
            raise malformed(url, "an object with a list of posts")
        mentions: list[RawMention] = []
        seen: list[tuple[float, str]] = []
        for post in posts:  # type: ignore[union-attr]
            uri, indexed = string(post, "uri"), parse_time(string(post, "indexedAt"))
            if uri is None or indexed is None or not mark.is_new(indexed.timestamp(), uri):
                continue
            seen.append((indexed.timestamp(), uri))
            if (mention := self._mention(uri, post)) is not None:
                mentions.append(mention)
        return PollResult(mentions=mentions, cursor=mark.advanced(seen).dump())

    def _mention(self, uri: str, post: Json) -> RawMention | None:
        record = obj(post, "record")
        author = obj(post, "author")
        text = string(record, "text")
        if not text:
            return None
        handle = string(author, "handle")
        rkey = uri.rsplit("/", 1)[-1]
        langs = record.get("langs")
        quotes, reposts = count(post.get("quoteCount")), count(post.get("repostCount"))
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=uri,
            text=text,
            url=f"https://bsky.app/profile/{handle}/post/{rkey}" if handle else None,
            author=f"@{handle}" if handle else None,
            author_followers=count(author.get("followersCount")),
            likes=count(post.get("likeCount")),
            reposts=None if reposts is None else reposts + (quotes or 0),
            replies=count(post.get("replyCount")),
            language=langs[0]
            if isinstance(langs, list) and langs and isinstance(langs[0], str)
            else None,
            published_at=parse_time(string(record, "createdAt"))
            or parse_time(string(post, "indexedAt")),
        )
