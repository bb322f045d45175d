"""Hacker News stories and comments, through the Algolia search API (``search_by_date``).

The cursor is the newest ``created_at_i`` seen plus the ids seen at that second; later polls ask
only for items created at or after it (``numericFilters``) and page back (``page`` up to
``nbPages``) until it is reached, so a burst of more than 100 items is read whole, up to
``max_pages`` pages; when that bound stops a poll, ``nbHits`` says how many were left.  Comment
text comes as HTML; a comment keeps the title and link of its story, which the hit carries, so
the reader of an alert knows what it answers.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

import httpx
from pydantic import Field

from connectors.base import PollResult
from connectors.http import fetch_json_page
from connectors.paging import Item, Page, page_back_to
from connectors.payload import HighWater, Json, count, html_to_text, malformed, objects, string
from monitor.config import HttpUrl, Query, SourceBase
from monitor.model import Cursor, RawMention

ITEM = "https://news.ycombinator.com/item?id="
LIMIT = 100


class HackerNewsSource(SourceBase):
    """The Algolia Hacker News search API (``search_by_date``), stories and comments."""

    type: Literal["hackernews"]
    query: Query
    tags: list[Literal["story", "comment"]] = Field(
        default_factory=lambda: ["story", "comment"], min_length=1
    )
    base_url: HttpUrl = "https://hn.algolia.com/api/v1"
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 one poll reads back towards the last item it stored."""


class HackerNewsConnector:
    """One ``type = "hackernews"`` source."""

    type = "hackernews"
    settings = HackerNewsSource

    def __init__(self, config: HackerNewsSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        url = f"{self.config.base_url.rstrip('/')}/search_by_date"
        mark = HighWater.load(cursor.cursor)
        query = {
            "query": self.config.query,
            "tags": f"({','.join(self.config.tags)})",
            "hitsPerPage": str(LIMIT),
        }
        if mark.newest:
            query["numericFilters"] = f"created_at_i>={int(mark.newest)}"

        async def fetch_page(params: dict[str, str]) -> Page:
            response = await fetch_json_page(client, url, params=params)
            body = response.body
            if not isinstance(body, dict) or not objects(body.get("hits")):
                raise malformed(url, "an object with a list of hits")
            page, pages = count(body.get("page")), count(body.get("nbPages"))
            following = None
            if page is not None and pages is not None and page + 1 < pages:
                following = {**params, "page": str(page + 1)}
            return Page(
                items=_items(body["hits"]),
                next=following,
                headers=response.headers,
                total=count(body.get("nbHits")),
            )

        paged = await page_back_to(
            mark, self.name, fetch_page, query, max_pages=self.config.max_pages, page_size=LIMIT
        )
        mentions = [m for item in paged.items if (m := self._mention(item)) is not None]
        return PollResult(
            mentions=mentions,
            cursor=mark.advanced(paged.seen()).dump(),
            truncated=paged.truncated,
            rest=paged.rest,
        )

    def _mention(self, item: Item) -> RawMention | None:
        hit = item.data
        if (comment := string(hit, "comment_text")) is not None:
            text = "\n".join(part for part in (html_to_text(comment), _story(hit)) if part)
        else:
            story = html_to_text(string(hit, "story_text") or "")
            text = "\n".join(part for part in (string(hit, "title"), story) if part)
        if not text:
            return None
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=item.id,
            text=text,
            url=ITEM + item.id,
            author=string(hit, "author"),
            likes=count(hit.get("points")),
            replies=count(hit.get("num_comments")),
            published_at=datetime.fromtimestamp(item.order, UTC),
        )


def _items(hits: list[Json]) -> list[Item]:
    """The hits that have an id and a creation time."""
    items = []
    for hit in hits:
        created, item = count(hit.get("created_at_i")), string(hit, "objectID")
        if created is not None and item is not None:
            items.append(Item(created, item, hit))
    return items


def _story(comment: Json) -> str | None:
    """``on “<story title>” <story link>`` for a comment hit, or None without a title."""
    title = string(comment, "story_title")
    if title is None:
        return None
    story = count(comment.get("story_id"))
    link = string(comment, "story_url") or (None if story is None else f"{ITEM}{story}")
    return f"— on “{title}”" + (f" {link}" if link else "")
