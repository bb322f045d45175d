"""Mastodon: an instance's public hashtag timelines and, with an access token, status search.

Each feed keeps its own newest status id, together as JSON in the cursor; Mastodon ids are
numbers in strings and grow with time.

- A hashtag timeline (``/api/v1/timelines/tag/<tag>``) is chronological: it is asked for what
  came ``since_id`` the stored id and paged back with the ``max_id`` of its ``Link: rel="next"``
  header until the stored id is reached — every public status with the tag that reached the
  instance, however many arrived between two polls (up to ``max_pages`` pages of 40).
- Search (``/api/v2/search``) ranks its results by relevance, so the first page is not the
  newest and a stored id cannot be "reached": it is asked only for statuses after the stored id
  (``min_id``) and read to the end with ``offset``.  It sees only what the instance's search
  index holds — on most instances, posts by accounts that opted in to search, and posts the
  token's account interacted with.

``X-RateLimit-Remaining`` / ``X-RateLimit-Reset`` (an ISO time) are honoured: when the window is
spent, the poll stops and asks to rest until the reset; feeds not yet read keep their cursor.
Boosts are read as the boosted status, once.  Status text is HTML; ``language`` is the author's.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qs, quote, urlsplit

import httpx
from pydantic import Field, model_validator

from connectors.base import PollResult, secret
from connectors.http import fetch_json_page
from connectors.paging import Item, Page, page_back
from connectors.payload import (
    Json,
    count,
    html_to_text,
    malformed,
    obj,
    objects,
    parse_time,
    string,
)
from monitor.config import EnvName, HttpUrl, Query, SourceBase
from monitor.model import Cursor, RawMention

LIMIT = 40
LINK = re.compile(r'<([^>]*)>\s*;\s*rel="?([^";,]*)"?')


@dataclass(frozen=True, slots=True)
class Feed:
    """One listing a source follows: a hashtag timeline or the search."""

    key: str
    """Its name in the cursor: ``tag:<tag>`` or ``search``."""
    url: str
    query: dict[str, str]
    headers: dict[str, str] | None = None
    chronological: bool = True
    """Newest first (a timeline), rather than ranked by relevance (the search)."""


class MastodonSource(SourceBase):
    """A Mastodon instance's public hashtag timelines and, with a token, status search.

    A hashtag timeline is chronological and complete (every public post with the tag that
    reached the instance); search is ranked and sees only what the instance indexes, so follow
    a hashtag where one exists."""

    type: Literal["mastodon"]
    instance: HttpUrl
    hashtags: list[str] = Field(default_factory=list)
    query: Query | None = None
    token_env: EnvName | None = None
    max_pages: int = Field(default=10, ge=1)
    """Pages of 40 one poll reads back, per hashtag and for the search."""

    @model_validator(mode="after")
    def _something_to_follow(self) -> MastodonSource:
        if not self.hashtags and self.query is None:
            raise ValueError("give hashtags to follow, or a query (with token_env)")
        if self.query is not None and self.token_env is None:
            raise ValueError("status search needs token_env naming the access-token variable")
        return self


class MastodonConnector:
    """One ``type = "mastodon"`` source."""

    type = "mastodon"
    settings = MastodonSource

    def __init__(self, config: MastodonSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        since = _read_cursor(cursor.cursor)
        found: dict[str, RawMention] = {}
        truncated: list[int] = []
        rest: float | None = None
        for feed in self._feeds():
            previous = since.get(feed.key, 0)
            paged = await page_back(
                self.name,
                _pager(client, feed),
                _first_query(feed, previous),
                is_new=lambda item, previous=previous: item.order > previous,
                resuming=previous > 0,
                max_pages=self.config.max_pages,
                page_size=LIMIT,
                chronological=feed.chronological,
            )
            for item in paged.items:
                since[feed.key] = max(since.get(feed.key, 0), int(item.order))
                if (mention := self._mention(obj(item.data, "reblog") or item.data)) is not None:
                    found.setdefault(mention.external_id, mention)
            if paged.truncated is not None:
                truncated.append(paged.truncated)
            if (rest := paged.rest) is not None:
                break  # the window is spent: the other feeds wait, cursors unchanged
        return PollResult(
            mentions=list(found.values()),
            cursor=Cursor(cursor=json.dumps(since)),
            truncated=sum(truncated) if truncated else None,
            rest=rest,
        )

    def _feeds(self) -> list[Feed]:
        base = self.config.instance.rstrip("/")
        feeds = [
            Feed(
                f"tag:{tag.lstrip('#').lower()}",
                f"{base}/api/v1/timelines/tag/{quote(tag.lstrip('#'))}",
                {"limit": str(LIMIT)},
            )
            for tag in self.config.hashtags
        ]
        if self.config.query is not None:
            query = {
                "q": self.config.query,
                "type": "statuses",
                "resolve": "false",
                "limit": str(LIMIT),
            }
            token = {"Authorization": f"Bearer {self._token()}"}
            feeds.append(Feed("search", f"{base}/api/v2/search", query, token, chronological=False))
        return feeds

    def _token(self) -> str:
        return secret(self.config.token_env)

    def _mention(self, status: Json) -> RawMention | None:
        status_id = string(status, "id")
        parts = [
            html_to_text(string(status, "spoiler_text") or ""),
            html_to_text(string(status, "content") or ""),
        ]
        text = "\n".join(p for p in parts if p)
        if status_id is None or not text:
            return None
        account = obj(status, "account")
        acct = string(account, "acct")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=string(status, "uri") or status_id,
            text=text,
            url=string(status, "url") or string(status, "uri"),
            author=f"@{acct}" if acct else None,
            author_followers=count(account.get("followers_count")),
            likes=count(status.get("favourites_count")),
            reposts=count(status.get("reblogs_count")),
            replies=count(status.get("replies_count")),
            language=string(status, "language"),
            published_at=parse_time(string(status, "created_at")),
        )


def _first_query(feed: Feed, previous: int) -> dict[str, str]:
    """The query for a feed's newest page: after the stored id, if there is one."""
    if not previous:
        return feed.query
    # the timeline pages back to since_id; search filters on min_id (it has no since_id)
    return {**feed.query, ("since_id" if feed.chronological else "min_id"): str(previous)}


def _pager(client: httpx.AsyncClient, feed: Feed) -> Callable[[dict[str, str]], Awaitable[Page]]:
    """Fetches one page of ``feed``: the statuses, and the query for the page after."""

    async def fetch_page(params: dict[str, str]) -> Page:
        response = await fetch_json_page(client, feed.url, params=params, headers=feed.headers)
        statuses = response.body
        if not feed.chronological:
            statuses = statuses.get("statuses") if isinstance(statuses, dict) else None
        if not objects(statuses):
            raise malformed(feed.url, "a list of statuses")
        items = [Item(int(i), i, s) for s in statuses if (i := string(s, "id")) and i.isdigit()]
        following = None
        if feed.chronological:
            if (max_id := _next_max_id(response.headers)) is not None:
                following = {**params, "max_id": max_id}
        elif len(statuses) >= LIMIT:
            following = {**params, "offset": str(int(params.get("offset", "0")) + len(statuses))}
        return Page(items=items, next=following, headers=response.headers)

    return fetch_page


def _next_max_id(headers: httpx.Headers) -> str | None:
    """The ``max_id`` of the ``Link: <…?max_id=…>; rel="next"`` header Mastodon sends while a
    timeline goes on."""
    for target, rel in LINK.findall(headers.get("link", "")):
        if "next" in rel.split():
            found = parse_qs(urlsplit(target).query).get("max_id")
            return found[0] if found else None
    return None


def _read_cursor(value: str | None) -> dict[str, int]:
    try:
        data = json.loads(value) if value else {}
        return {str(k): int(v) for k, v in data.items()}
    except (ValueError, TypeError, AttributeError):
        return {}
