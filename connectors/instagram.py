"""An Instagram professional account through the Instagram Graph API (on the Graph API host, as
the ``facebook_page`` source): comments and replies on its media, media that tag it, and
hashtags' recent media.

Auth, paging, usage headers and errors are the Graph API's (``connectors.graph``): a token with
``instagram_basic`` and ``instagram_manage_comments`` (and the Page it is linked to) travels in
the ``Authorization`` header, and a poll stops asking and rests when the usage headers say usage
is high (Instagram's business use case is ``instagram``, error 80002).

What a poll reads, each with its own marks in the cursor:

- ``comments``: ``/{ig-user-id}/media`` (the account's newest ``watch_media`` media, one call),
  then ``/{media-id}/comments`` with their ``replies`` only for the media whose
  ``comments_count`` changed since the last poll (it counts replies too): a quiet account costs
  one call a poll.  Each medium keeps its own mark, so a poll cut short by usage reads the
  others' new comments next time.  The account's own comments (the brand replying) are not
  mentions; its media are the brand speaking and are not either.
- ``tags``: ``/{ig-user-id}/tags``, media other accounts tagged it in, paged back to the newest
  one seen (``max_pages``).
- ``hashtags``: each hashtag's id is found once with ``ig_hashtag_search`` and kept in the
  cursor, then ``/{hashtag-id}/recent_media`` (media of the last 24 hours, newest first) is
  paged back to the newest one seen.  Hashtag media carry no author.

The hashtag limit.  Instagram lets an account query at most 30 unique hashtags in a rolling
7 days (``ig_hashtag_search``, counted per Instagram account, across every app and source using
it): a source with more than 30 hashtags is a config error, and sources sharing an account must
stay under 30 together.  Changing a source's hashtags spends new ones; searching a hashtag
already searched within the 7 days does not.

Matching needs the brand's name, which comments rarely say: a comment carries its account after
its text (``— on @<account>'s post``), and a tagged medium likewise (``— tags @<account>``);
add the handle to the brand's terms.  The username is read once (``/{ig-user-id}?fields=
username``) and kept in the cursor.

Links.  A medium links to its ``permalink``.  Instagram gives comments no link: a comment's is
its medium's permalink with ``comment_id=<id>``, which opens the post to reply under, and tells
comments apart (storage keeps one mention per brand and link).
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any, Literal

import httpx
from pydantic import Field, field_validator

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

log = logging.getLogger(__name__)

MAX_HASHTAGS = 30
"""Unique hashtags an Instagram account may query in a rolling 7 days."""
MEDIA_FIELDS = "id,caption,timestamp,permalink,username,like_count,comments_count"
HASHTAG_MEDIA_FIELDS = "id,caption,timestamp,permalink,like_count,comments_count"
REPLY_FIELDS = "id,text,timestamp,username,like_count"
COMMENT_FIELDS = f"{REPLY_FIELDS},replies.limit(50){{{REPLY_FIELDS}}}"
PAGE_SIZE = 50


class InstagramSource(GraphSource):
    """An Instagram professional account: comments on its media, tags, hashtags.

    At most 30 ``hashtags``: Instagram lets an account query 30 unique hashtags in 7 days, so
    sources sharing an account share those 30.
    """

    type: Literal["instagram"]
    ig_user_id: str = Field(pattern=r"^[0-9]{1,30}$")
    """The professional account's id (``/{page-id}?fields=instagram_business_account``)."""
    token_env: EnvName = "INSTAGRAM_TOKEN"
    comments: bool = True
    tags: bool = True
    hashtags: list[str] = Field(default_factory=list)
    """Without ``#``; compared without case."""
    watch_media: int = Field(default=25, ge=1, le=100)
    """The account's newest media whose new comments every poll looks for."""

    @field_validator("hashtags")
    @classmethod
    def _hashtags(cls, tags: list[str]) -> list[str]:
        clean: list[str] = []
        for tag in tags:
            name = tag.strip().removeprefix("#").lower()
            if not name or not all(c.isalnum() or c == "_" for c in name) or len(name) > 100:
                raise ValueError(f"{tag!r} is not a hashtag (letters, digits and _)")
            if name not in clean:
                clean.append(name)
        if len(clean) > MAX_HASHTAGS:
            raise ValueError(
                f"{len(clean)} hashtags: Instagram lets an account query at most {MAX_HASHTAGS} "
                "unique hashtags in 7 days (across all its sources)"
            )
        return clean


class InstagramConnector:
    """One ``type = "instagram"`` source."""

    type = "instagram"
    settings = InstagramSource

    def __init__(self, config: InstagramSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        graph = Graph(client, self.config)
        state = load_state(cursor.cursor)
        account = self.config.ig_user_id
        username = await graph.remembered(state, "username", account, "username") or account
        mentions: list[RawMention] = []
        cut: list[int] = []

        if self.config.comments:
            found_comments = await self._comments(graph, state, username)
            mentions += found_comments[0]
            cut += found_comments[1]
        if self.config.tags:
            found = await graph.gently(partial(self._tags, graph, state, username))
            if found is not None:
                mentions += found[0]
                cut += [found[1]] if found[1] else []
        if self.config.hashtags:
            found_tags = await self._hashtags(graph, state)
            mentions += found_tags[0]
            cut += found_tags[1]
        return graph.result(mentions, cut, state)

    async def _comments(
        self, graph: Graph, state: Json, username: str
    ) -> tuple[list[RawMention], list[int]]:
        """New comments on the media whose comment count changed; ``state["media"]`` keeps
        each watched medium's count and mark."""
        media = await graph.gently(
            partial(
                graph.listing,
                f"{self.config.ig_user_id}/media",
                {"fields": MEDIA_FIELDS, "limit": str(self.config.watch_media)},
                is_new=lambda medium: True,
                resuming=False,  # one page: the newest watch_media
                max_pages=1,
            )
        )
        if media is None:
            return [], []
        known = _object(state.get("media"))
        watched: Json = {}
        mentions: list[RawMention] = []
        cut: list[int] = []
        for medium in media.items:
            medium_id = medium["id"]
            before = _object(known.get(medium_id))
            watched[medium_id] = before
            comments = count(medium.get("comments_count"))
            if not comments or comments == before.get("count"):
                continue
            found = await graph.gently(
                partial(self._media_comments, graph, medium, before, username)
            )
            if found is None:
                continue  # resting: the count stays, so it is read next time
            mentions += found[0]
            watched[medium_id] = {**found[1], "count": comments}
            cut += [found[2]] if found[2] else []
        state["media"] = watched
        return mentions, cut

    async def _media_comments(
        self, graph: Graph, medium: Json, before: Json, username: str
    ) -> tuple[list[RawMention], Json, int | None]:
        mark = load_mark(before)
        listing = await graph.listing(
            f"{medium['id']}/comments",
            {"fields": COMMENT_FIELDS, "limit": str(PAGE_SIZE)},
            is_new=lambda comment: True,  # in no promised order: read it all (max_pages)
            resuming=True,
            max_pages=self.config.max_pages,
        )
        everything: list[tuple[Json, str | None]] = []
        for comment in listing.items:
            everything.append((comment, None))
            replies = obj(comment, "replies").get("data", [])
            for reply in replies if objects(replies) else []:
                if string(reply, "id"):
                    everything.append((reply, comment["id"]))
        url = string(medium, "permalink")
        mentions = [
            mention
            for comment, parent in everything
            if mark.is_new(created(comment, "timestamp") or 0.0, comment["id"])
            and string(comment, "username") != username
            if (mention := self._comment(comment, parent, medium["id"], url, username))
        ]
        seen = (
            (when, comment["id"])
            for comment, _ in everything
            if (when := created(comment, "timestamp")) is not None
        )
        return mentions, dump_mark(mark.advanced(seen)), listing.truncated

    async def _tags(
        self, graph: Graph, state: Json, username: str
    ) -> tuple[list[RawMention], int | None]:
        mark = load_mark(state.get("tags"))
        listing = await graph.listing(
            f"{self.config.ig_user_id}/tags",
            {"fields": MEDIA_FIELDS, "limit": str(PAGE_SIZE)},
            is_new=lambda medium: _is_new(mark, medium),
            resuming=bool(mark.newest),
            max_pages=self.config.max_pages,
        )
        mentions = [
            mention
            for medium in listing.items
            if _is_new(mark, medium)
            if (mention := self._medium(medium, f"— tags @{username}", "tags"))
        ]
        state["tags"] = dump_mark(mark.advanced(_seen(listing.items)))
        return mentions, listing.truncated

    async def _hashtags(self, graph: Graph, state: Json) -> tuple[list[RawMention], list[int]]:
        """New recent media of each hashtag; ``state["hashtag_ids"]`` caches the ids found by
        ``ig_hashtag_search``, ``state["hashtags"]`` each hashtag's mark."""
        cached, stored = _object(state.get("hashtag_ids")), _object(state.get("hashtags"))
        ids: dict[str, str] = {
            tag: cached[tag] for tag in self.config.hashtags if isinstance(cached.get(tag), str)
        }
        marks: Json = {tag: stored[tag] for tag in self.config.hashtags if tag in stored}
        mentions: list[RawMention] = []
        cut: list[int] = []
        for tag in self.config.hashtags:
            if tag not in ids:
                found_id = await graph.gently(partial(self._hashtag_id, graph, tag))
                if found_id is None:
                    continue
                ids[tag] = found_id
            mark = load_mark(marks.get(tag))
            found = await graph.gently(partial(self._hashtag_media, graph, tag, ids[tag], mark))
            if found is None:
                continue
            mentions += found[0]
            marks[tag] = found[1]
            if found[2]:
                cut.append(found[2])
        state["hashtag_ids"], state["hashtags"] = ids, marks
        return mentions, cut

    async def _hashtag_id(self, graph: Graph, tag: str) -> str | None:
        body = await graph.get("ig_hashtag_search", {"user_id": self.config.ig_user_id, "q": tag})
        data = body.get("data", [])
        found = string(data[0], "id") if objects(data) and data else None
        if found is None:
            log.warning("hashtag not found source=%s hashtag=%s", self.name, tag)
        return found

    async def _hashtag_media(
        self, graph: Graph, tag: str, tag_id: str, mark: HighWater
    ) -> tuple[list[RawMention], Json, int | None]:
        listing = await graph.listing(
            f"{tag_id}/recent_media",
            {
                "user_id": self.config.ig_user_id,
                "fields": HASHTAG_MEDIA_FIELDS,
                "limit": str(PAGE_SIZE),
            },
            is_new=lambda medium: _is_new(mark, medium),
            resuming=bool(mark.newest),
            max_pages=self.config.max_pages,
        )
        mentions = [
            mention
            for medium in listing.items
            if _is_new(mark, medium)
            if (mention := self._medium(medium, None, f"hashtag:{tag}"))
        ]
        return mentions, dump_mark(mark.advanced(_seen(listing.items))), listing.truncated

    def _medium(self, medium: Json, context: str | None, found_by: str) -> RawMention | None:
        caption = string(medium, "caption")
        if caption is None and context is None:
            return None
        username = string(medium, "username")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=f"ig:{medium['id']}",
            url=string(medium, "permalink"),
            text="\n".join(part for part in (caption, context) if part),
            author=f"@{username}" if username else None,
            likes=count(medium.get("like_count")),
            replies=count(medium.get("comments_count")),
            published_at=parse_time(string(medium, "timestamp")),
            extra={"ig_user_id": self.config.ig_user_id, "found_by": found_by},
        )

    def _comment(
        self, comment: Json, parent: str | None, media_id: str, url: str | None, owner: str
    ) -> RawMention | None:
        text = string(comment, "text")
        if text is None:
            return None
        username = string(comment, "username")
        extra = {"ig_user_id": self.config.ig_user_id, "media_id": media_id}
        if url:
            extra["media_url"] = url
        if parent:
            extra["parent_id"] = parent
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=f"ig-comment:{comment['id']}",
            url=comment_url(url, comment["id"]) if url else None,
            text=f"{text}\n— on @{owner}'s post",
            author=f"@{username}" if username else None,
            likes=count(comment.get("like_count")),
            published_at=parse_time(string(comment, "timestamp")),
            extra=extra,
        )


def _is_new(mark: HighWater, medium: Json) -> bool:
    return mark.is_new(created(medium, "timestamp") or 0.0, medium["id"])


def _seen(items: list[Json]) -> list[tuple[float, str]]:
    return [
        (when, item["id"]) for item in items if (when := created(item, "timestamp")) is not None
    ]


def _object(value: Any) -> Json:
    return value if isinstance(value, dict) else {}
