"""Reddit search, newest first, without an API key.

``/search.json?q=…&sort=new`` (or ``/r/<sub>/search.json`` with ``restrict_sr=1``) returns a
Listing of up to 100 posts.  Keyless clients are asked for a descriptive User-Agent (the shared
client sends brandmon's) and about one request a minute, which the config enforces.  The cursor
is the newest ``created_utc`` seen plus the ids seen at that second, so a restart neither
reports old posts again nor misses what arrived while brandmon was down — within the newest 100,
which is all one page gives.  Reddit answers a client it is blocking with an HTML page: that is a
``malformed`` error, not a crash; a 429 without ``Retry-After`` rests a minute.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from connectors.base import Cursor, PollResult, SourceError
from connectors.http import fetch_json
from connectors.payload import HighWater, Json, count, malformed, obj, objects, string
from monitor.config import RedditSource
from monitor.model import RawMention

WEB = "https://www.reddit.com"


class RedditConnector:
    """One ``type = "reddit"`` source."""

    type = "reddit"

    def __init__(self, config: RedditSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        base = self.config.base_url.rstrip("/")
        params = {"q": self.config.query, "sort": "new", "limit": "100", "type": "link"}
        if self.config.subreddit:
            url = f"{base}/r/{self.config.subreddit}/search.json"
            params["restrict_sr"] = "1"
        else:
            url = f"{base}/search.json"
        try:
            body = await fetch_json(client, url, params=params)
        except SourceError as error:
            if error.kind == "http_429" and error.retry_after is None:
                # neither Retry-After nor x-ratelimit-reset: a minute, as Reddit asks keyless
                # clients
                raise SourceError("http_429", str(error), retry_after=60.0) from None
            raise
        posts = _children(body, url)
        mark = HighWater.load(cursor.cursor)
        mentions: list[RawMention] = []
        for post in posts:
            created, post_id = post.get("created_utc"), string(post, "id")
            if isinstance(created, int | float) and post_id and mark.is_new(created, post_id):
                mentions.append(self._mention(post_id, float(created), post))
        return PollResult(mentions=mentions, cursor=mark.advanced(HighWater.of(mentions)).dump())

    def _mention(self, post_id: str, created: float, post: Json) -> RawMention:
        title = string(post, "title") or ""
        body = string(post, "selftext") or ""
        permalink = string(post, "permalink")
        author = string(post, "author")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=post_id,
            text=f"{title}\n{body}".strip(),
            url=f"{WEB}{permalink}" if permalink and permalink.startswith("/") else None,
            author=None if author in (None, "[deleted]") else f"u/{author}",
            likes=count(post.get("score")),
            replies=count(post.get("num_comments")),
            published_at=datetime.fromtimestamp(created, UTC),
        )


def _children(body: object, url: str) -> list[Json]:
    """The posts of a Listing."""
    if not isinstance(body, dict) or body.get("kind") != "Listing":
        raise malformed(url, "a Listing (Reddit may be blocking this client)")
    children = obj(body, "data").get("children")
    if not objects(children):
        raise malformed(url, "a Listing with a list of children")
    return [obj(child, "data") for child in children if child.get("kind") == "t3"]
