"""YouTube Data API v3: new videos that match a query, and the comments under them.

A poll makes one ``search.list`` call for the videos published since the newest one seen, newest
first, never paged: a poll sees at most ``max_videos`` new videos.  When something new turned
up, one ``videos.list`` and one ``channels.list`` call add the view, like and comment counts and
the channels' subscriber counts, and with ``comments`` one ``commentThreads.list`` call per new
video that has comments adds its newest top-level comments.  A video's comments are read once,
when the video is found, and only if its ``statistics.commentCount`` is above 0: a video
without comments, with comments disabled (no ``commentCount``) or gone by the time its
statistics are asked for (no statistics) would cost a unit for nothing.

Quota.  ``search.list`` costs 100 units, the others 1 (``UNITS``), from the key's project's
``daily_quota`` (10,000 by default), which renews at midnight Pacific time.  A poll may spend
``poll_quota`` = ``daily_quota × interval / 24 h`` units, so the day's ``24 h / interval``
polls spend at most ``daily_quota``: every 30 minutes that is 208 units, 48 polls × 208 =
9,984.  The search and the two statistics calls take 102 of them (the config refuses an
interval whose share is smaller); what is left pays for comment threads, one unit a video
(106 every 30 minutes, 2 every 15), and the comments of videos beyond it are not read (logged).

Refusals.  The API wants its key in the query string; the HTTP layer strips query strings from
every error message, so the key never reaches a log.  Google says why it refused a request
(400 or 403) in the body's ``error.errors[].reason``, which the HTTP layer keeps on the error:

- ``quotaExceeded``: the day's quota is spent.  The poll rests until it renews (``retry_after``);
  if it happens while reading comments, the videos already found are kept and the poll asks
  for the rest (``PollResult.rest``).
- ``rateLimitExceeded``, ``userRateLimitExceeded``: too many requests at once; ``http_429``,
  and the scheduler backs off.
- ``commentsDisabled`` on a comment thread (or a 404): only that video's comments are skipped.
- any other 403, or a key Google does not accept: ``auth``, naming the likely cause.  The
  scheduler backs off exponentially up to an hour between polls, so a bad key costs two
  requests an hour, not a retry storm.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import httpx
from pydantic import Field, model_validator

from connectors.base import PollResult, SourceError, secret
from connectors.http import fetch_json
from connectors.payload import (
    Json,
    count,
    html_to_text,
    obj,
    objects,
    parse_time,
    refusal,
    string,
)
from monitor.config import Duration, EnvName, HttpUrl, Query, SourceBase
from monitor.http import redact_url
from monitor.model import Cursor, RawMention, utcnow

log = logging.getLogger(__name__)

WATCH_URL = "https://www.youtube.com/watch"
UNITS = {"search": 100, "videos": 1, "channels": 1, "commentThreads": 1}
"""Quota units each list call costs."""
FIXED_UNITS = UNITS["search"] + UNITS["videos"] + UNITS["channels"]
"""What a poll that finds videos spends before comments (``YouTubeSource`` checks its share
covers it)."""
QUOTA_DAY = ZoneInfo("America/Los_Angeles")
"""YouTube's quota day runs from midnight to midnight Pacific time."""
RATE_LIMITS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
CAUSES = {
    "keyInvalid": "the API key is not valid",
    "API_KEY_INVALID": "the API key is not valid",
    "keyExpired": "the API key has expired",
    "accessNotConfigured": "the YouTube Data API v3 is not enabled in the key's Google Cloud "
    "project",
    "SERVICE_DISABLED": "the YouTube Data API v3 is not enabled in the key's Google Cloud project",
    "API_KEY_SERVICE_BLOCKED": "the key's API restrictions do not include the YouTube Data API v3",
    "API_KEY_IP_ADDRESS_BLOCKED": "the key's IP address restrictions do not include this server",
    "API_KEY_HTTP_REFERRER_BLOCKED": "the key is restricted to websites (HTTP referrers); a "
    "server needs a key restricted to its IP addresses",
    "forbidden": "the key is not allowed to make this request",
}
"""Why Google refuses a key, by the ``reason`` it gives."""
UNKNOWN_CAUSE = (
    "check that the API key is valid, that the YouTube Data API v3 is enabled in its project "
    "and that the key's restrictions allow this server"
)


class YouTubeSource(SourceBase):
    """YouTube Data API v3: new videos matching a query, and their comment threads.

    The API key's project gets ``daily_quota`` units a day (10,000 unless Google granted more),
    renewed at midnight Pacific time.  A poll spends at most its share, ``poll_quota`` =
    ``daily_quota × interval / 24 h`` units, so a day of polls never spends more than the day
    has.  A poll that finds videos needs 102 units: the search (100), the videos' statistics (1)
    and their channels' subscriber counts (1); what is left of its share reads comments, one
    unit a video.  Sources sharing a key share its quota: split ``daily_quota`` between them.
    """

    type: Literal["youtube"]
    query: Query
    api_key_env: EnvName = "YOUTUBE_API_KEY"
    comments: bool = True
    max_videos: int = Field(default=10, ge=1, le=50)
    base_url: HttpUrl = "https://www.googleapis.com/youtube/v3"
    interval: Duration = timedelta(minutes=30)
    """Every 30 minutes a poll may spend 208 units: 106 comment threads after the 102."""
    daily_quota: int = Field(default=10_000, ge=1)

    @property
    def poll_quota(self) -> int:
        """Quota units one poll may spend: ``daily_quota × interval / 24 h``, rounded down."""
        return int(self.daily_quota * (self.interval / timedelta(days=1)))

    @model_validator(mode="after")
    def _quota_covers_a_poll(self) -> YouTubeSource:
        needed = 102  # search.list 100 + videos.list 1 + channels.list 1 (connectors/youtube.py)
        if self.poll_quota < needed:
            shortest = -(-needed * 1440 // self.daily_quota)  # minutes, rounded up
            every = self.interval.total_seconds() / 60
            raise ValueError(
                f"a poll every {every:g}m may spend {self.poll_quota} of the {self.daily_quota} "
                f"daily quota units, less than the {needed} a poll needs (a search costs 100): "
                f"poll every {shortest}m or more, or raise daily_quota"
            )
        return self


class YouTubeConnector:
    """One ``type = "youtube"`` source."""

    type = "youtube"
    settings = YouTubeSource

    def __init__(self, config: YouTubeSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        key = secret(self.config.api_key_env)
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

        videos = {
            video_id: self._video(video_id, snippet, details.get(video_id), subscribers)
            for video_id, snippet in found.items()
        }
        published = [since, *(video.published_at for video in videos.values())]
        newest = max((moment for moment in published if moment), default=None)
        mentions, rest = await self._with_comments(client, key, videos)
        return PollResult(
            mentions=mentions, cursor=Cursor(cursor=_iso(newest) if newest else None), rest=rest
        )

    async def _with_comments(
        self, client: httpx.AsyncClient, key: str, videos: dict[str, RawMention]
    ) -> tuple[list[RawMention], float | None]:
        """The videos, each followed by its newest comments while the poll's quota share
        lasts, and the rest the API asked for if it refused to go on (quota spent)."""
        mentions: list[RawMention] = []
        calls = (self.config.poll_quota - FIXED_UNITS) // UNITS["commentThreads"]
        unread: list[str] = []
        why = f"this poll's share of the quota ({self.config.poll_quota} units) is spent"
        rest = None
        for video_id, video in videos.items():
            mentions.append(video)
            if not (self.config.comments and video.replies):  # none, disabled or gone
                continue
            if calls <= 0:
                unread.append(video_id)
                continue
            calls -= 1
            try:
                mentions += await self._comments(client, key, video_id)
            except SourceError as error:
                if error.kind != "http_429":
                    raise
                unread.append(video_id)
                calls, why, rest = 0, str(error), error.retry_after
        if unread:
            log.warning(
                "comments not read source=%s videos=%s: %s", self.name, ",".join(unread), why
            )
        return mentions, rest

    async def _list(
        self, client: httpx.AsyncClient, key: str, endpoint: str, params: dict[str, str]
    ) -> list[Json]:
        """The ``items`` of one API list call."""
        url = f"{self.config.base_url.rstrip('/')}/{endpoint}"
        query = {**params, "key": key}
        try:
            body = await fetch_json(client, url, params=query)
        except SourceError as error:
            raise _explained(error) from None
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
            # commentsDisabled (403) or videoNotFound (404) concern this video alone.
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


def _explained(error: SourceError) -> SourceError:
    """``error`` told by the reason Google gives for a refusal (400, 403); see the module's
    docstring.  Other errors, and a 400 that is not about the key, are returned as they are."""
    status = error.status if error.kind == "http_4xx" else None
    if status not in (400, 403):
        return error
    reasons = _reasons(refusal(error))
    given = f"{error} ({', '.join(reasons) or 'no reason given'})"
    if "quotaExceeded" in reasons:
        return SourceError(
            "http_429",
            f"{given}: the YouTube API quota of the key's project is spent for today; resting "
            "until it renews at midnight Pacific time (lower daily_quota if other programs or "
            "sources use the same key)",
            retry_after=until_quota_renews(),
        )
    if RATE_LIMITS.intersection(reasons):
        return SourceError("http_429", f"{given}: too many requests in a short time")
    if "commentsDisabled" in reasons:
        return error
    cause = next((CAUSES[reason] for reason in reasons if reason in CAUSES), None)
    if cause is None and status == 400:
        return error
    return SourceError("auth", f"{given}: {cause or UNKNOWN_CAUSE}")


def _reasons(refusal: Json) -> list[str]:
    """Why Google refused a request, most specific first: the ``reason`` of each entry of the
    refusal's ``error.details`` (where newer responses name it, ``API_KEY_INVALID``) and
    ``error.errors`` (``keyInvalid``, or a generic ``forbidden``)."""
    error = obj(refusal, "error")
    reasons: list[str] = []
    for key in ("details", "errors"):
        if objects(entries := error.get(key)):
            reasons += [reason for entry in entries if (reason := string(entry, "reason"))]
    return list(dict.fromkeys(reasons))


def until_quota_renews(now: datetime | None = None) -> float:
    """Seconds until YouTube renews the daily quota, at the next midnight Pacific time (a
    minute's margin).  Days are 23 or 25 hours long when the clocks change."""
    local = (now or utcnow()).astimezone(QUOTA_DAY)
    midnight = datetime.combine(local.date() + timedelta(days=1), time(), tzinfo=QUOTA_DAY)
    return (midnight.astimezone(UTC) - local.astimezone(UTC)).total_seconds() + 60


def _iso(moment: datetime) -> str:
    """RFC 3339 in UTC, as ``publishedAfter`` wants it."""
    return moment.isoformat().replace("+00:00", "Z")
