"""Reddit search, newest first, without an API key.

``/search.json?q=…&sort=new&raw_json=1`` (or ``/r/<sub>/search.json`` with ``restrict_sr=1``)
returns a Listing of up to 100 posts and, when there are more, ``after`` naming the last one
(``raw_json=1``, else titles and text come HTML-escaped).  Keyless clients are asked for a
descriptive User-Agent (the shared client sends brandmon's) and are rate-limited per window
(``x-ratelimit-remaining``, ``x-ratelimit-reset`` in seconds).  The cursor is the newest
``created_utc`` seen plus the ids seen at that second; a poll pages back with ``after`` until
it reaches it, so a burst of more than 100 posts between two polls is read whole, up to
``max_pages`` pages, and stops early — asking to rest until the reset — when the window is
spent.  A post keeps its subreddit as context (``r/malaysia: <title>``); its link loses
Reddit's tracking parameters.  The subreddit's subscribers are not the author's audience (a
2-upvote post in a big subreddit would weigh as a celebrity's), so reach comes from the post's
own votes and comments.  Reddit
answers a client it is blocking with an HTML page: that is a ``malformed`` error, not a crash;
a 429 without ``Retry-After`` or a reset rests a minute.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import httpx
from pydantic import Field, field_validator

from connectors.base import PollResult, SourceError
from connectors.http import JsonPage, fetch_json_page
from connectors.paging import Item, Page, page_back_to
from connectors.payload import HighWater, Json, count, malformed, obj, objects, string
from monitor.config import Duration, HttpUrl, Query, SourceBase
from monitor.model import Cursor, RawMention

log = logging.getLogger(__name__)

WEB = "https://www.reddit.com"
LIMIT = 100
TRACKING_PARAMS = frozenset({"ref", "ref_source", "ref_campaign", "share_id", "rdt"})
"""Query parameters Reddit adds to links it hands out (``?ref=search_posts``,
``?share_id=…``), besides ``utm_*``; they say where a link was clicked, not what it shows."""


class RedditSource(SourceBase):
    """Reddit search, newest first; keyless, so polite: polled at most once a minute, and a
    poll that pages back through a burst stops when ``x-ratelimit-remaining`` runs out."""

    type: Literal["reddit"]
    query: Query
    subreddit: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_]{2,21}$")
    interval: Duration = timedelta(minutes=5)
    base_url: HttpUrl = "https://www.reddit.com"
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 one poll reads back towards the last post it stored."""

    @field_validator("interval")
    @classmethod
    def _polite(cls, value: timedelta) -> timedelta:
        if value < timedelta(seconds=60):
            raise ValueError("Reddit asks keyless clients for at most one request a minute")
        return value


class RedditConnector:
    """One ``type = "reddit"`` source."""

    type = "reddit"
    settings = RedditSource

    def __init__(self, config: RedditSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        base = self.config.base_url.rstrip("/")
        query = {"q": self.config.query, "sort": "new", "limit": str(LIMIT), "type": "link"}
        query["raw_json"] = "1"  # else "Q&A" comes as "Q&amp;A"
        if self.config.subreddit:
            url = f"{base}/r/{self.config.subreddit}/search.json"
            query["restrict_sr"] = "1"
        else:
            url = f"{base}/search.json"

        async def fetch_page(params: dict[str, str]) -> Page:
            response = await _fetch(client, url, params)
            listing = _listing(response.body, url)
            after = string(listing, "after")
            return Page(
                items=_posts(listing),
                next={**params, "after": after} if after else None,
                headers=response.headers,
            )

        mark = HighWater.load(cursor.cursor)
        paged = await page_back_to(
            mark, self.name, fetch_page, query, max_pages=self.config.max_pages, page_size=LIMIT
        )
        mentions = [self._mention(item) for item in paged.items]
        return PollResult(
            mentions=mentions,
            cursor=mark.advanced(paged.seen()).dump(),
            truncated=paged.truncated,
            rest=paged.rest,
        )

    def _mention(self, item: Item) -> RawMention:
        post = item.data
        title = string(post, "title") or ""
        if subreddit := string(post, "subreddit"):
            # where it was said: r/malaysia is not r/KFC
            title = f"r/{subreddit}: {title}"
        body = string(post, "selftext") or ""
        permalink = string(post, "permalink")
        author = string(post, "author")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=item.id,
            text=f"{title}\n{body}".strip(),
            url=_without_tracking(f"{WEB}{permalink}")
            if permalink and permalink.startswith("/")
            else None,
            author=None if author in (None, "[deleted]") else f"u/{author}",
            # the post's audience is its subreddit: Reddit shows no follower counts
            likes=count(post.get("score")),
            replies=count(post.get("num_comments")),
            published_at=datetime.fromtimestamp(item.order, UTC),
        )


async def _fetch(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> JsonPage:
    try:
        return await fetch_json_page(client, url, params=params)
    except SourceError as error:
        if error.kind == "http_429" and error.retry_after is None:
            # neither Retry-After nor x-ratelimit-reset: a minute, as Reddit asks keyless clients
            raise SourceError("http_429", str(error), retry_after=60.0) from None
        raise


def _listing(body: object, url: str) -> Json:
    """The ``data`` of a Listing whose children are objects."""
    if not isinstance(body, dict) or body.get("kind") != "Listing":
        raise malformed(url, "a Listing (Reddit may be blocking this client)")
    listing = obj(body, "data")
    if not objects(listing.get("children")):
        raise malformed(url, "a Listing with a list of children")
    return listing


def _posts(listing: Json) -> list[Item]:
    """The posts (``t3``) of a Listing that have an id and a creation time."""
    posts = []
    for child in listing["children"]:
        post = obj(child, "data")
        created, post_id = post.get("created_utc"), string(post, "id")
        if child.get("kind") == "t3" and isinstance(created, int | float) and post_id:
            posts.append(Item(float(created), post_id, post))
    return posts


def _without_tracking(url: str) -> str:
    """``url`` without the parameters that only track where it was clicked."""
    parts = urlsplit(url)
    if not parts.query:
        return url
    kept = [
        (key, value)
        for key, value in parse_qsl(parts.query, keep_blank_values=True)
        if key.lower() not in TRACKING_PARAMS and not key.lower().startswith("utm_")
    ]
    return urlunsplit(parts._replace(query=urlencode(kept)))
