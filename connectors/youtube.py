"""YouTube Data API v3: new videos that match a query, and the comments under them.

A poll makes one ``search.list`` call for the videos published since the newest one seen, newest
first.  That call costs 100 of the 10,000 quota units a project gets a day, so it is never paged
(a poll sees at most ``max_videos`` new videos) and the default interval is 15 minutes.  When
something new turned up, one ``videos.list`` and one ``channels.list`` call (1 unit each) add
the view, like and comment counts and the channels' subscriber counts, and with ``comments`` one
``commentThreads.list`` call (1 unit) per new video adds its newest top-level comments: a video's
comments are read once, when the video is found.

The API wants its key in the query string.  The HTTP layer strips query strings from every error
message, so the key never reaches a log.  A 403 means the quota or rate limit is used up (or the
key may not call this API); the HTTP layer does not hand over the body that says which, so every
403 is reported as ``http_429`` with an hour's rest — except on a comment thread, where it means
the video's comments are disabled and only that video's comments are skipped.
"""

from __future__ import annotations

import os
import re
from datetime import datetime
from urllib.parse import urlencode

import httpx

from connectors.base import Cursor, PollResult, SourceError
from connectors.http import fetch_json, redact_url
from connectors.payload import Json, count, html_to_text, obj, parse_time, string
from monitor.config import YouTubeSource
from monitor.model import RawMention

WATCH_URL = "https://www.youtube.com/watch"
QUOTA_REST = 3600.0
"""Seconds to wait after a 403: quotas reset daily, rate limits sooner."""


class YouTubeConnector:
    """One ``type = "youtube"`` source."""

    type = "youtube"

    def __init__(self, config: YouTubeSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        variable = self.config.api_key_env
        key = os.environ.get(variable)
        if not key:
            raise SourceError("auth", f"environment variable {variable} is not set")
        try:
            return await self._poll(client, key, cursor)
        except SourceError as error:
            if _status(error) != 403:
                raise
            raise SourceError(
                "http_429",
                f"{error}: YouTube quota or rate limit exceeded (the default quota is 10,000 "
                "units a day and every search costs 100), or the API key may not call the "
                "YouTube Data API; trying again in an hour",
                retry_after=QUOTA_REST,
            ) from None

    async def _poll(self, client: httpx.AsyncClient, key: str, cursor: Cursor) -> PollResult:
        since = parse_time(cursor.cursor)
        search = {
            "part": "snippet",
            "type": "video",
            "order": "date",
            "q": self.config.query,
            "maxResults": str(self.config.max_videos),
        }
        if since:
            search["publishedAfter"] = _iso(since)
        found: dict[str, Json] = {}
        for result in await self._list(client, key, "search", search):
            video_id = string(obj(result, "id"), "videoId")
            snippet = obj(result, "snippet")
            published = parse_time(string(snippet, "publishedAt"))
            # publishedAfter is inclusive: the newest video of the last poll comes back.
            if video_id and not (since and published and published <= since):
                found.setdefault(video_id, snippet)
        if not found:
            return PollResult(cursor=cursor)

        videos = await self._list(
            client, key, "videos", {"part": "statistics,snippet", "id": ",".join(found)}
        )
        details = {video["id"]: video for video in videos if isinstance(video.get("id"), str)}
        channels = {
            channel for snippet in found.values() if (channel := string(snippet, "channelId"))
        }
        subscribers = await self._subscribers(client, key, sorted(channels))

        mentions: list[RawMention] = []
        newest = since
        for video_id, snippet in found.items():
            video = self._video(video_id, snippet, details.get(video_id), subscribers)
            mentions.append(video)
            if video.published_at and (newest is None or video.published_at > newest):
                newest = video.published_at
            # A video known to have no comments yet is not worth a quota unit.
            if self.config.comments and video.replies != 0:
                mentions += await self._comments(client, key, video_id)
        return PollResult(mentions=mentions, cursor=Cursor(cursor=_iso(newest) if newest else None))

    async def _list(
        self, client: httpx.AsyncClient, key: str, endpoint: str, params: dict[str, str]
    ) -> list[Json]:
        """The ``items`` of one API list call."""
        url = f"{self.config.base_url.rstrip('/')}/{endpoint}"
        body = await fetch_json(client, url, params={**params, "key": key})
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not all(isinstance(item, dict) for item in items):
            raise SourceError(
                "malformed", f"{redact_url(url)} did not return an object with a list of items"
            )
        return items

    async def _subscribers(
        self, client: httpx.AsyncClient, key: str, channel_ids: list[str]
    ) -> dict[str, int | None]:
        if not channel_ids:
            return {}
        channels = await self._list(
            client, key, "channels", {"part": "statistics", "id": ",".join(channel_ids)}
        )
        counts: dict[str, int | None] = {}
        for channel in channels:
            stats = obj(channel, "statistics")
            if isinstance(channel_id := channel.get("id"), str):
                hidden = stats.get("hiddenSubscriberCount") is True
                counts[channel_id] = None if hidden else count(stats.get("subscriberCount"))
        return counts

    async def _comments(
        self, client: httpx.AsyncClient, key: str, video_id: str
    ) -> list[RawMention]:
        params = {
            "part": "snippet",
            "videoId": video_id,
            "order": "time",
            "maxResults": "50",
        }
        try:
            threads = await self._list(client, key, "commentThreads", params)
        except SourceError as error:
            # commentsDisabled (403) or videoNotFound (404) concern this video alone; a bad key
            # or an exhausted quota has already failed the search.
            if error.kind == "http_4xx":
                return []
            raise
        return [c for thread in threads if (c := self._comment(video_id, thread))]

    def _video(
        self,
        video_id: str,
        found: Json,
        video: Json | None,
        subscribers: dict[str, int | None],
    ) -> RawMention:
        details = obj(video or {}, "snippet")
        stats = obj(video or {}, "statistics")
        snippet = details or found
        parts = (string(snippet, "title"), string(snippet, "description"))
        if not details:  # search results are HTML-escaped ("Acme&#39;s") and shortened
            parts = tuple(html_to_text(part) if part else None for part in parts)
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=f"yt:{video_id}",
            url=f"{WATCH_URL}?{urlencode({'v': video_id})}",
            text="\n".join(part.strip() for part in parts if part and part.strip()),
            author=string(snippet, "channelTitle"),
            author_followers=subscribers.get(string(found, "channelId") or ""),
            likes=count(stats.get("likeCount")),
            replies=count(stats.get("commentCount")),
            views=count(stats.get("viewCount")),
            language=string(snippet, "defaultLanguage") or string(snippet, "defaultAudioLanguage"),
            published_at=parse_time(string(snippet, "publishedAt")),
        )

    def _comment(self, video_id: str, thread: Json) -> RawMention | None:
        snippet = obj(thread, "snippet")
        top = obj(snippet, "topLevelComment")
        comment_id = string(top, "id") or string(thread, "id")
        if not comment_id:
            return None
        comment = obj(top, "snippet")
        text = string(comment, "textOriginal") or html_to_text(string(comment, "textDisplay") or "")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=f"yt-comment:{comment_id}",
            url=f"{WATCH_URL}?{urlencode({'v': video_id, 'lc': comment_id})}",
            text=text,
            author=string(comment, "authorDisplayName"),
            likes=count(comment.get("likeCount")),
            replies=count(snippet.get("totalReplyCount")),
            published_at=parse_time(string(comment, "publishedAt")),
        )


def _status(error: SourceError) -> int | None:
    """The HTTP status of an ``http_4xx`` error (``SourceError`` has no field for it)."""
    found = re.match(r"HTTP (\d{3}) ", str(error)) if error.kind == "http_4xx" else None
    return int(found[1]) if found else None


def _iso(moment: datetime) -> str:
    """RFC 3339 in UTC, as ``publishedAfter`` wants it."""
    return moment.isoformat().replace("+00:00", "Z")
