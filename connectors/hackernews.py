"""Hacker News stories and comments, through the Algolia search API (``search_by_date``).

The cursor is the newest ``created_at_i`` seen plus the ids seen at that second; later polls ask
only for items created at or after it (``numericFilters``), so a restart misses nothing the API
still returns (up to 100 per poll) and reports nothing twice.  Comment text comes as HTML.
"""

from __future__ import annotations

from datetime import UTC, datetime

import httpx

from connectors.base import Cursor, PollResult
from connectors.http import fetch_json
from connectors.payload import HighWater, Json, count, html_to_text, malformed, objects, string
from monitor.config import HackerNewsSource
from monitor.model import RawMention

ITEM = "https://news.ycombinator.com/item?id="


class HackerNewsConnector:
    """One ``type = "hackernews"`` source."""

    type = "hackernews"

    def __init__(self, config: HackerNewsSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        url = f"{self.config.base_url.rstrip('/')}/search_by_date"
        mark = HighWater.load(cursor.cursor)
        params = {
            "query": self.config.query,
            "tags": f"({','.join(self.config.tags)})",
            "hitsPerPage": "100",
        }
        if mark.newest:
            params["numericFilters"] = f"created_at_i>={int(mark.newest)}"
        body = await fetch_json(client, url, params=params)
        hits = body.get("hits") if isinstance(body, dict) else None
        if not objects(hits):
            raise malformed(url, "an object with a list of hits")
        mentions: list[RawMention] = []
        for hit in hits:  # type: ignore[union-attr]
            created, item = count(hit.get("created_at_i")), string(hit, "objectID")
            if created is None or item is None or not mark.is_new(created, item):
                continue
            if (mention := self._mention(item, created, hit)) is not None:
                mentions.append(mention)
        return PollResult(mentions=mentions, cursor=mark.advanced(HighWater.of(mentions)).dump())

    def _mention(self, item: str, created: int, hit: Json) -> RawMention | None:
        if (comment := string(hit, "comment_text")) is not None:
            text = html_to_text(comment)
        else:
            story = html_to_text(string(hit, "story_text") or "")
            text = "\n".join(part for part in (string(hit, "title"), story) if part)
        if not text:
            return None
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=item,
            text=text,
            url=ITEM + item,
            author=string(hit, "author"),
            likes=count(hit.get("points")),
            replies=count(hit.get("num_comments")),
            published_at=datetime.fromtimestamp(created, UTC),
        )
