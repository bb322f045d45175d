"""A Facebook Page through the Graph API: what people post on it, the comments and replies under
its posts, the posts that tag it, and its recommendations (reviews).

Auth, paging, usage headers and errors are the Graph API's, shared with Instagram
(``connectors.graph``): a Page access token (``pages_read_engagement``, and
``pages_read_user_content`` for visitors' posts, comments, tags and ratings) travels in the
``Authorization`` header, and a poll stops asking and rests when ``x-app-usage``,
``x-page-usage`` or ``x-business-use-case-usage`` say usage is high.

What a poll reads (``read``, all three by default), each listing with its own mark in the cursor:

- ``feed``: ``/{page-id}/feed``, newest first, ``watch_posts`` (25) a page, each post with its
  newest 50 comments and replies inline (``comments.filter(stream)``: every level in one list,
  so a new reply to an old comment is among the newest, which ``comments{comments}`` would
  miss).  The feed is paged back (``max_pages``) until it reaches the newest post seen; new
  comments are looked for on every post read, so a poll sees new comments on the newest
  ``watch_posts`` posts whenever they were written.  Posts by visitors are mentions; the Page's
  own posts and comments are the brand speaking and are not, but comments on them are.
- ``tagged``: ``/{page-id}/tagged``, posts that tag the Page, paged back the same way.
- ``ratings``: ``/{page-id}/ratings``, the Page's recommendations.  Facebook replaced stars by
  "recommends" / "doesn't recommend" (``recommendation_type``) in 2018: a positive one is
  stored as 5 stars, a negative one as 1 (``RawMention.rating``), so "doesn't recommend" is
  negative whatever its words and "recommends" over a complaint reads as mixed, as scoring
  treats stars.  An older review that still carries its ``rating`` (1–5 stars) keeps it.

What is written on the Page rarely names the brand, which matching needs: each mention carries
the Page's name after its text (``— on <Page>'s Page`` for a visitor's post, ``— on <Page>'s
post`` for a comment, ``— tags <Page>``, ``— review of <Page>``), read once with
``/{page-id}?fields=name`` and kept in the cursor.

Links.  A post links to its ``permalink_url``; a comment to its own ``permalink_url``, else its
post's with ``comment_id`` (storage keeps one mention per brand and link, so comments need links
of their own); a review to its story where Facebook gives one, else none.
"""

from __future__ import annotations

import hashlib
from functools import partial
from typing import Literal

import httpx
from pydantic import Field

from connectors.base import PollResult
from connectors.graph import (
    Graph,
    GraphSource,
    comment_url,
    created,
    dump_mark,
    load_mark,
    load_state,
)
from connectors.payload import HighWater, Json, count, obj, objects, parse_time, string
from monitor.config import EnvName
from monitor.model import Cursor, RawMention

FACEBOOK = "https://www.facebook.com"
COMMENTS = 50
"""Newest comments (and replies) read with each post."""
COMMENT_FIELDS = (
    "id,message,created_time,permalink_url,from{id,name},like_count,comment_count,parent{id}"
)
FEED_FIELDS = (
    "id,message,created_time,permalink_url,from{id,name},shares,"
    "reactions.summary(total_count).limit(0),"
    f"comments.filter(stream).order(reverse_chronological).limit({COMMENTS})"
    f".summary(total_count){{{COMMENT_FIELDS}}}"
)
TAGGED_FIELDS = "id,message,created_time,permalink_url,from{id,name}"
RATING_FIELDS = (
    "created_time,recommendation_type,review_text,rating,reviewer{id,name},open_graph_story{id}"
)
RECOMMENDATION_STARS = {"positive": 5, "negative": 1}
Edge = Literal["feed", "tagged", "ratings"]
EDGES: tuple[Edge, ...] = ("feed", "tagged", "ratings")
Found = tuple[list[RawMention], int | None]
"""A listing's new mentions, and how many may be missing when a bound cut it short."""


class FacebookPageSource(GraphSource):
    """A Facebook Page: visitors' posts, comments and replies, tags and recommendations."""

    type: Literal["facebook_page"]
    page_id: str = Field(pattern=r"^[0-9]{1,30}$")
    """The Page's numeric id (its About section, or ``/me?fields=id`` with its token)."""
    token_env: EnvName = "FACEBOOK_PAGE_TOKEN"
    read: list[Edge] = Field(default_factory=lambda: list(EDGES), min_length=1)
    watch_posts: int = Field(default=25, ge=1, le=100)
    """Feed posts a page: every poll reads the newest comments of this many newest posts."""


class FacebookPageConnector:
    """One ``type = "facebook_page"`` source."""

    type = "facebook_page"
    settings = FacebookPageSource

    def __init__(self, config: FacebookPageSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        graph = Graph(client, self.config)
        state = load_state(cursor.cursor)
        name = await graph.remembered(state, "page_name", self.config.page_id, "name")
        name = name or "the Page"
        readers = {
            "feed": partial(self._feed, graph, state, name),
            "tagged": partial(self._tagged, graph, state, name),
            "ratings": partial(self._ratings, graph, state, name),
        }
        mentions: list[RawMention] = []
        cut: list[int] = []
        for edge in self.config.read:
            found = await graph.gently(readers[edge])
            if found is not None:
                mentions += found[0]
                cut += [found[1]] if found[1] else []
        return graph.result(mentions, cut, state)

    async def _feed(self, graph: Graph, state: Json, name: str) -> Found:
        """New visitors' posts of the feed and new comments on the posts read; ``state``'s
        ``posts`` and ``comments`` marks advance."""
        posts, comments = load_mark(state.get("posts")), load_mark(state.get("comments"))
        listing = await graph.listing(
            f"{self.config.page_id}/feed",
            {"fields": FEED_FIELDS, "limit": str(self.config.watch_posts)},
            is_new=lambda post: _is_new(posts, post),
            resuming=bool(posts.newest),
            max_pages=self.config.max_pages,
        )
        mentions: list[RawMention] = []
        read: list[Json] = []
        for post in listing.items:
            url = url_of(post)
            new = _is_new(posts, post) and not self._own(post)
            if new and (mention := self._post(post, url, "feed", f"— on {name}'s Page")):
                mentions.append(mention)
            thread = obj(post, "comments").get("data", [])
            for comment in thread if objects(thread) else []:
                if not string(comment, "id"):
                    continue
                read.append(comment)
                new = _is_new(comments, comment) and not self._own(comment)
                if new and (mention := self._comment(comment, post["id"], url, name)):
                    mentions.append(mention)
        state["posts"] = dump_mark(posts.advanced(_seen(listing.items)))
        state["comments"] = dump_mark(comments.advanced(_seen(read)))
        return mentions, listing.truncated

    async def _tagged(self, graph: Graph, state: Json, name: str) -> Found:
        mark = load_mark(state.get("tagged"))
        listing = await graph.listing(
            f"{self.config.page_id}/tagged",
            {"fields": TAGGED_FIELDS, "limit": "25"},
            is_new=lambda post: _is_new(mark, post),
            resuming=bool(mark.newest),
            max_pages=self.config.max_pages,
        )
        mentions = [
            mention
            for post in listing.items
            if _is_new(mark, post) and not self._own(post)
            if (mention := self._post(post, url_of(post), "tagged", f"— tags {name}"))
        ]
        state["tagged"] = dump_mark(mark.advanced(_seen(listing.items)))
        return mentions, listing.truncated

    async def _ratings(self, graph: Graph, state: Json, name: str) -> Found:
        mark = load_mark(state.get("ratings"))
        listing = await graph.listing(
            f"{self.config.page_id}/ratings",
            {"fields": RATING_FIELDS, "limit": "25"},
            is_new=lambda rating: mark.is_new(created(rating) or 0.0, _rating_id(rating)),
            resuming=bool(mark.newest),
            max_pages=self.config.max_pages,
            identify=_rating_id,
        )
        mentions = [
            self._rating(rating, name)
            for rating in listing.items
            if mark.is_new(created(rating) or 0.0, _rating_id(rating))
        ]
        seen = ((when, _rating_id(r)) for r in listing.items if (when := created(r)) is not None)
        state["ratings"] = dump_mark(mark.advanced(seen))
        return mentions, listing.truncated

    def _own(self, item: Json) -> bool:
        """Whether the Page itself wrote ``item``."""
        return string(obj(item, "from"), "id") == self.config.page_id

    def _post(self, post: Json, url: str, edge: str, context: str) -> RawMention | None:
        text = string(post, "message")
        if text is None:  # a shared link or photo without words, or a story ("… updated …")
            return None
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=f"fb:{post['id']}",
            url=url,
            text=f"{text}\n{context}",
            author=string(obj(post, "from"), "name"),
            likes=count(obj(obj(post, "reactions"), "summary").get("total_count")),
            reposts=count(obj(post, "shares").get("count")),
            replies=count(obj(obj(post, "comments"), "summary").get("total_count")),
            published_at=parse_time(string(post, "created_time")),
            extra={"page_id": self.config.page_id, "edge": edge},
        )

    def _comment(self, comment: Json, post_id: str, post_url: str, name: str) -> RawMention | None:
        text = string(comment, "message")
        if text is None:  # a sticker or photo alone
            return None
        comment_id = comment["id"]
        parent = string(obj(comment, "parent"), "id")
        extra = {"page_id": self.config.page_id, "post_id": post_id, "post_url": post_url}
        if parent:
            extra["parent_id"] = parent
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=f"fb-comment:{comment_id}",
            url=string(comment, "permalink_url")
            or comment_url(post_url, comment_id.rpartition("_")[2]),
            text=f"{text}\n— on {name}'s post",
            author=string(obj(comment, "from"), "name"),
            likes=count(comment.get("like_count")),
            replies=count(comment.get("comment_count")),
            published_at=parse_time(string(comment, "created_time")),
            extra=extra,
        )

    def _rating(self, rating: Json, name: str) -> RawMention:
        kind = string(rating, "recommendation_type")
        stars = count(rating.get("rating"))
        if stars is None or not 1 <= stars <= 5:
            stars = RECOMMENDATION_STARS.get(kind or "")
        story = string(obj(rating, "open_graph_story"), "id")
        words = string(rating, "review_text")
        extra = {"page_id": self.config.page_id}
        if kind:
            extra["recommendation"] = kind
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=f"fb-rating:{_rating_id(rating)}",
            url=f"{FACEBOOK}/{story}" if story else None,
            text="\n".join(part for part in (words, f"— review of {name}") if part),
            author=string(obj(rating, "reviewer"), "name"),
            published_at=parse_time(string(rating, "created_time")),
            rating=stars,
            extra=extra,
        )


def url_of(post: Json) -> str:
    """A post's link: its ``permalink_url``, else the one Facebook resolves from its id."""
    return string(post, "permalink_url") or f"{FACEBOOK}/{post['id']}"


def _is_new(mark: HighWater, item: Json) -> bool:
    return mark.is_new(created(item) or 0.0, item["id"])


def _seen(items: list[Json]) -> list[tuple[float, str]]:
    return [(when, item["id"]) for item in items if (when := created(item)) is not None]


def _rating_id(rating: Json) -> str:
    """A recommendation's id: its story's, else a digest of who wrote what when (the API gives
    recommendations no id of their own)."""
    story = string(obj(rating, "open_graph_story"), "id")
    if story:
        return story
    parts = (
        string(rating, "created_time") or "",
        string(obj(rating, "reviewer"), "id") or "",
        string(rating, "review_text") or "",
    )
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]
