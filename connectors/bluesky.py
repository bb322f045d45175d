"""Bluesky: ``app.bsky.feed.searchPosts`` on an AppView (the public one needs no account).

Posts are asked for newest first and ``since`` the newest index time seen; the ids seen at that
time are kept too, so a restart repeats nothing.  A poll pages back with ``cursor`` until it
reaches them, so a burst of more than 100 posts is read whole, up to ``max_pages`` pages (when
that bound stops it, ``hitsTotal`` says how many were left).  ``ratelimit-remaining`` /
``ratelimit-reset`` (Unix time) are honoured: a spent window stops the poll and asks to rest.

Search results carry no follower counts (a post's author is a basic profile), so the authors of
new posts are looked up with ``app.bsky.actor.getProfiles``, 25 a call, and their counts kept
for a day.  The post's own ``langs`` is its language; quotes count as reposts.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlencode

import httpx
from pydantic import Field

from connectors.base import PollResult, SourceError, secret
from connectors.http import fetch_json_page, slow_down
from connectors.paging import Item, Page, page_back_to
from connectors.payload import HighWater, Json, count, malformed, obj, objects, parse_time, string
from monitor.config import EnvName, HttpUrl, Query, SourceBase
from monitor.model import Cursor, RawMention

log = logging.getLogger(__name__)

LIMIT = 100
PROFILES_PER_CALL = 25
"""``getProfiles`` takes at most 25 ``actors``."""
FOLLOWERS_TTL = 86_400.0
FOLLOWERS_KEPT = 10_000


class FollowerCache:
    """Follower counts by author DID, each kept for ``ttl`` seconds; past ``size`` authors the
    least recently fetched are dropped, so a long-running daemon's memory stays bounded."""

    def __init__(
        self,
        ttl: float = FOLLOWERS_TTL,
        size: int = FOLLOWERS_KEPT,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl, self.size, self.clock = ttl, size, clock
        self._entries: OrderedDict[str, tuple[float, int]] = OrderedDict()

    def get(self, did: str) -> int | None:
        entry = self._entries.get(did)
        if entry is None:
            return None
        fetched, followers = entry
        if self.clock() - fetched >= self.ttl:
            del self._entries[did]
            return None
        return followers

    def put(self, did: str, followers: int) -> None:
        self._entries[did] = (self.clock(), followers)
        self._entries.move_to_end(did)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)


class BlueskySource(SourceBase):
    """``app.bsky.feed.searchPosts`` on an AppView (the public one by default)."""

    type: Literal["bluesky"]
    query: Query
    lang: str | None = None
    base_url: HttpUrl = "https://public.api.bsky.app"
    token_env: EnvName | None = None
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 one poll reads back towards the last post it stored."""


class BlueskyConnector:
    """One ``type = "bluesky"`` source."""

    type = "bluesky"
    settings = BlueskySource

    def __init__(self, config: BlueskySource) -> None:
        self.config = config
        self.name = config.name
        self.followers = FollowerCache()

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        base = self.config.base_url.rstrip("/")
        url = f"{base}/xrpc/app.bsky.feed.searchPosts"
        mark = HighWater.load(cursor.cursor)
        query = {"q": self.config.query, "sort": "latest", "limit": str(LIMIT)}
        if self.config.lang:
            query["lang"] = self.config.lang
        if mark.newest:
            since = datetime.fromtimestamp(mark.newest, UTC)
            query["since"] = since.isoformat().replace("+00:00", "Z")
        headers = self._headers()

        async def fetch_page(params: dict[str, str]) -> Page:
            response = await fetch_json_page(client, url, params=params, headers=headers)
            body = response.body
            if not isinstance(body, dict) or not objects(body.get("posts")):
                raise malformed(url, "an object with a list of posts")
            after = string(body, "cursor")
            return Page(
                items=_items(body["posts"]),
                next={**params, "cursor": after} if after else None,
                headers=response.headers,
                total=count(body.get("hitsTotal")),
            )

        paged = await page_back_to(
            mark, self.name, fetch_page, query, max_pages=self.config.max_pages, page_size=LIMIT
        )
        found = [
            (mention, string(obj(item.data, "author"), "did"))
            for item in paged.items
            if (mention := self._mention(item)) is not None
        ]
        unknown = [(m, did) for m, did in found if m.author_followers is None and did is not None]
        rest = paged.rest
        if rest is None:  # with the window spent, these posts go without follower counts
            rest = await self._look_up_followers(client, base, headers, [d for _, d in unknown])
        for mention, did in unknown:
            mention.author_followers = self.followers.get(did)
        return PollResult(
            mentions=[mention for mention, _ in found],
            cursor=mark.advanced(paged.seen()).dump(),
            truncated=paged.truncated,
            rest=rest,
        )

    def _headers(self) -> dict[str, str] | None:
        if not self.config.token_env:
            return None
        return {"Authorization": f"Bearer {secret(self.config.token_env)}"}

    async def _look_up_followers(
        self,
        client: httpx.AsyncClient,
        base: str,
        headers: dict[str, str] | None,
        authors: list[str],
    ) -> float | None:
        """Fetch the follower counts of ``authors`` not in the cache into it, 25 per
        ``getProfiles`` call; return the rest the AppView asked for, if any.

        Followers only refine reach, so a failed lookup is logged and the posts are kept
        without them rather than failing the poll.
        """
        wanted = list(dict.fromkeys(d for d in authors if self.followers.get(d) is None))
        url = f"{base}/xrpc/app.bsky.actor.getProfiles"
        for start in range(0, len(wanted), PROFILES_PER_CALL):
            actors = urlencode([("actors", d) for d in wanted[start : start + PROFILES_PER_CALL]])
            try:
                response = await fetch_json_page(client, f"{url}?{actors}", headers=headers)
                body = response.body
                if not isinstance(body, dict) or not objects(body.get("profiles")):
                    raise malformed(url, "an object with a list of profiles")
            except SourceError as error:
                log.warning(
                    "follower lookup failed source=%s error=%s: %s", self.name, error.kind, error
                )
                return error.retry_after if error.kind == "http_429" else None
            for profile in body["profiles"]:
                did, followers = string(profile, "did"), count(profile.get("followersCount"))
                if did is not None and followers is not None:
                    self.followers.put(did, followers)
            if (rest := slow_down(response.headers)) is not None:
                return rest
        return None

    def _mention(self, item: Item) -> RawMention | None:
        post = item.data
        record = obj(post, "record")
        author = obj(post, "author")
        text = string(record, "text")
        if not text:
            return None
        handle = string(author, "handle")
        rkey = item.id.rsplit("/", 1)[-1]
        langs = record.get("langs")
        quotes, reposts = count(post.get("quoteCount")), count(post.get("repostCount"))
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=item.id,
            text=text,
            url=f"https://bsky.app/profile/{handle}/post/{rkey}" if handle else None,
            author=f"@{handle}" if handle else None,
            # a basic profile has no count; some AppViews add one
            author_followers=count(author.get("followersCount")),
            likes=count(post.get("likeCount")),
            reposts=None if reposts is None else reposts + (quotes or 0),
            replies=count(post.get("replyCount")),
            # the author's own choice of language(s) for the post: the first is its main one
            language=langs[0]
            if isinstance(langs, list) and langs and isinstance(langs[0], str)
            else None,
            published_at=parse_time(string(record, "createdAt"))
            or datetime.fromtimestamp(item.order, UTC),
        )


def _items(posts: list[Json]) -> list[Item]:
    """The posts that have a URI and an index time (the order ``sort=latest`` follows)."""
    items = []
    for post in posts:
        uri, indexed = string(post, "uri"), parse_time(string(post, "indexedAt"))
        if uri is not None and indexed is not None:
            items.append(Item(indexed.timestamp(), uri, post))
    return items
