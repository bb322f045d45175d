"""Discourse: posts that match a query on one forum, newest first, through its search API.

``/search.json?q=<query> order:latest`` answers 50 posts a page (``page`` 1 to 10, as far as
Discourse pages a search) with their topics; ``grouped_search_result.more_full_page_results``
says whether there is another page.  The cursor is the newest post's ``created_at`` plus the
ids seen at that moment; a poll pages back until it reaches it, at most ``max_pages`` pages,
and says so (``PollResult.truncated``, a warning) when that bound cut it short.  The first poll
reads one page.

A search result carries a ``blurb``: the part of the post around the match, cut with "...".
For a cut blurb the whole post is read (``/posts/<id>.json``, its ``cooked`` HTML as text), at
most ``max_full_posts`` a poll, one after the other; beyond that, or when the post cannot be
read (deleted, hidden since), the blurb is the text.  A reply keeps the title of its topic
after its text (``— on “<title>”``), the first post of a topic has it before; the link opens
the post in its topic (``/t/<slug>/<topic id>/<post number>``).

What it cannot see: what the forum's search does not index or the client may not read
(private categories, private messages — with an API key, what its user may read), edits made
after a post was found, follower counts (Discourse has none; likes are the post's
``like_count``), the category's name (only ``category_id`` is kept, in ``extra``).

Private forums: an API key (``Api-Key`` header, from the environment) and the user it acts
for (``Api-Username``).  Discourse rate-limits anonymous search per IP and per minute: a 429
with ``Retry-After`` (or, without it, the body's ``extras.wait_seconds``) is honoured, and a
search it refuses for the same reason with a 200 and ``grouped_search_result.error`` is taken
as a 429 resting a minute.  A 429 while reading whole posts keeps the blurbs and asks for a
rest (``PollResult.rest``).
"""

from __future__ import annotations

import logging
from typing import Literal

import httpx
from pydantic import Field, model_validator

from connectors.base import PollResult, SourceError, secret
from connectors.http import JsonPage, fetch_json_page
from connectors.paging import Item, Page, page_back_to
from connectors.payload import (
    HighWater,
    Json,
    count,
    html_to_text,
    malformed,
    obj,
    objects,
    parse_time,
    refusal,
    string,
)
from monitor.config import EnvName, HttpUrl, Query, SourceBase
from monitor.model import Cursor, RawMention

log = logging.getLogger(__name__)

PAGE_SIZE = 50
LAST_PAGE = 10
"""Discourse refuses a search ``page`` above 10."""
SEARCH_REFUSED_REST = 60.0
"""Discourse's search limits are per minute."""
CUT = ("...", "…")


class DiscourseSource(SourceBase):
    """One Discourse forum's search."""

    type: Literal["discourse"]
    base_url: HttpUrl
    """The forum's address, e.g. ``https://community.example.com`` (with its subfolder, if any)."""
    query: Query
    api_key_env: EnvName | None = None
    api_username: str | None = Field(default=None, min_length=1, max_length=60)
    max_pages: int = Field(default=5, ge=1, le=LAST_PAGE)
    """Pages of 50 posts one poll reads back towards the last post it stored."""
    max_full_posts: int = Field(default=20, ge=0, le=200)
    """Posts with a cut blurb whose whole text one poll reads (one request each)."""

    @model_validator(mode="after")
    def _key_with_user(self) -> DiscourseSource:
        if (self.api_key_env is None) != (self.api_username is None):
            raise ValueError("api_key_env and api_username go together: set both or neither")
        return self


class DiscourseConnector:
    """One ``type = "discourse"`` source."""

    type = "discourse"
    settings = DiscourseSource

    def __init__(self, config: DiscourseSource) -> None:
        self.config = config
        self.name = config.name
        self.base = config.base_url.rstrip("/")

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        headers = self._headers()
        url = f"{self.base}/search.json"
        topics: dict[int, Json] = {}

        async def fetch_page(params: dict[str, str]) -> Page:
            response = await _get(client, url, params, headers)
            body = response.body
            if not isinstance(body, dict) or not objects(posts := body.get("posts", [])):
                raise malformed(url, "an object with a list of posts")
            if not objects(found := body.get("topics", [])):
                raise malformed(url, "'topics' as a list of topics")
            grouped = obj(body, "grouped_search_result")
            if refused := string(grouped, "error"):
                raise SourceError(
                    "http_429",
                    f"{url} refused the search: {refused}",
                    retry_after=SEARCH_REFUSED_REST,
                )
            topics.update(
                {
                    topic_id: topic
                    for topic in found
                    if (topic_id := count(topic.get("id"))) is not None
                }
            )
            page = int(params.get("page", "1"))
            more = grouped.get("more_full_page_results") is True and page < LAST_PAGE
            return Page(
                items=_items(posts),
                next={**params, "page": str(page + 1)} if more else None,
                headers=response.headers,
            )

        mark = HighWater.load(cursor.cursor)
        query = {"q": f"{self.config.query} order:latest"}
        paged = await page_back_to(
            mark, self.name, fetch_page, query, max_pages=self.config.max_pages, page_size=PAGE_SIZE
        )
        texts, rest = await self._whole_posts(client, headers, paged.items)
        mentions = [self._mention(item, topics, texts) for item in paged.items]
        return PollResult(
            mentions=mentions,
            cursor=mark.advanced(paged.seen()).dump(),
            truncated=paged.truncated,
            rest=rest if rest is not None else paged.rest,
        )

    def _headers(self) -> dict[str, str]:
        variable, username = self.config.api_key_env, self.config.api_username
        if variable is None or username is None:
            return {}
        return {"Api-Key": secret(variable), "Api-Username": username}

    async def _whole_posts(
        self, client: httpx.AsyncClient, headers: dict[str, str], items: list[Item]
    ) -> tuple[dict[str, str], float | None]:
        """The whole text of posts whose blurb is cut, at most ``max_full_posts``, by post id;
        and the rest Discourse asked for if it refused one with a 429."""
        cut = [item.id for item in items if _is_cut(string(item.data, "blurb") or "")]
        wanted = cut[: self.config.max_full_posts]
        if len(cut) > len(wanted):
            log.info(
                "blurbs kept source=%s posts=%d (max_full_posts=%d)",
                self.name,
                len(cut) - len(wanted),
                self.config.max_full_posts,
            )
        texts: dict[str, str] = {}
        for post_id in wanted:
            url = f"{self.base}/posts/{post_id}.json"
            try:
                post = (await _get(client, url, {}, headers)).body
            except SourceError as error:
                if error.kind == "http_429":
                    return texts, error.retry_after or SEARCH_REFUSED_REST
                log.info("blurb kept source=%s post=%s: %s", self.name, post_id, error)
                continue
            post = post if isinstance(post, dict) else {}
            cooked = string(post, "cooked")
            if text := (html_to_text(cooked) if cooked else string(post, "raw")):
                texts[post_id] = text
        return texts, None

    def _mention(self, item: Item, topics: dict[int, Json], texts: dict[str, str]) -> RawMention:
        post = item.data
        topic_id, number = count(post.get("topic_id")), count(post.get("post_number"))
        topic = topics.get(topic_id, {}) if topic_id is not None else {}
        title, slug = string(topic, "title"), string(topic, "slug")
        text = texts.get(item.id) or html_to_text(string(post, "blurb") or "")
        if title and number == 1:
            text = f"{title}\n{text}"
        elif title:
            text = f"{text}\n— on “{title}”"
        known = {"topic_id": topic_id, "post_number": number}
        known["category_id"] = count(topic.get("category_id"))
        extra = {key: str(value) for key, value in known.items() if value is not None}
        username = string(post, "username")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=item.id,
            text=text,
            url=f"{self.base}/t/{slug}/{topic_id}/{number}"
            if slug and topic_id is not None and number is not None
            else f"{self.base}/p/{item.id}",  # Discourse redirects to the post in its topic
            author=f"@{username}" if username else None,
            likes=count(post.get("like_count")),
            published_at=parse_time(string(post, "created_at")),
            extra=extra,
        )


async def _get(
    client: httpx.AsyncClient, url: str, params: dict[str, str], headers: dict[str, str]
) -> JsonPage:
    """``fetch_json_page``, with the wait of a 429 that has no ``Retry-After`` read from its
    body, and a refusal of this client (401, 403) an ``auth`` error."""
    try:
        return await fetch_json_page(client, url, params=params, headers=headers)
    except SourceError as error:
        if error.status in (401, 403):
            raise SourceError(
                "auth",
                f"{error}: the forum does not let this client read it (a private forum needs "
                "api_key_env and api_username)",
            ) from None
        if error.status != 429 or error.retry_after is not None:
            raise
        wait = count(obj(refusal(error), "extras").get("wait_seconds"))
        raise SourceError(
            "http_429", str(error), retry_after=None if wait is None else float(wait)
        ) from None


def _items(posts: list[Json]) -> list[Item]:
    """The posts that have an id and a creation time."""
    items = []
    for post in posts:
        post_id, created = count(post.get("id")), parse_time(string(post, "created_at"))
        if post_id is not None and created is not None:
            items.append(Item(created.timestamp(), str(post_id), post))
    return items


def _is_cut(blurb: str) -> bool:
    return blurb.startswith(CUT) or blurb.endswith(CUT)
