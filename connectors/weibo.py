"""Weibo Open API v2: posts that @-mention the brand's account (``statuses/mentions``) and
comments on its posts or to it (``comments/to_me``), read with that account's access token.

Each feed keeps its newest id (ids grow with time) in the cursor, as JSON.  A poll asks each
for what came ``since_id`` it, 200 a page, newest first, and pages back with ``max_id`` (the
oldest id read, less one) while ``next_cursor`` says there is more, at most ``max_pages``
pages a feed; a poll cut short logs a warning and says so (``PollResult.truncated``).  The
first poll reads one page of each.

A post keeps what it reposts after its own text (``//@<author>: <text>``); a comment keeps
the post it answers (``— on @<author>: <text>``), so the brand it names is matched with it,
and links to that post (a comment has no page of its own).  Posts carry their author's
``followers_count`` and their reposts, comments and likes (``attitudes_count``); comments only
their author's followers.  Times come as ``Tue May 31 17:46:55 +0800 2011``.  Weibo gives no
language: detection decides (its Chinese model scores Chinese text).

What it cannot see: posts that name the brand without @-mentioning its account (Weibo's
search API is closed to most apps), comments on other accounts' posts, the full text of long
posts (``isLongText``: the text is cut, with a link to the rest), deleted posts (skipped).

Limits and errors: requests are counted per hour for the token's user, the app and the IP
(``account/rate_limit_status``: an unaudited app gets about 150 an hour per user).  Weibo
answers ``{"error", "error_code", "request"}``: 10022, 10023 and 10024 (IP, user, user per
interface over their limit) rest until the next full hour, when the counts reset; a
token error (213xx: expired, revoked, invalid) is ``auth``.  When a limit stops the second
feed, the first one's findings are kept and the poll asks for the rest.  The access token
travels as the ``access_token`` query parameter, which the HTTP layer never names in errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

import httpx
from pydantic import Field

from connectors.base import PollResult, SourceError, secret
from connectors.http import JsonPage, fetch_json_page
from connectors.paging import Item, Page, Paged, page_back
from connectors.payload import Json, count, malformed, obj, objects, refusal, string
from monitor.config import Duration, EnvName, HttpUrl, SourceBase
from monitor.model import Cursor, RawMention, utcnow

PAGE_SIZE = 200
RATE_LIMITS = frozenset({10022, 10023, 10024})
TOKEN_ERRORS = 213
"""Weibo's error codes 21300-21399 are about the access token."""
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEB = "https://weibo.com"


@dataclass(frozen=True, slots=True)
class Feed:
    path: str
    key: str
    """The list of the answer: ``statuses`` or ``comments``."""


FEEDS = {
    "mentions": Feed("statuses/mentions.json", "statuses"),
    "comments": Feed("comments/to_me.json", "comments"),
}


class WeiboSource(SourceBase):
    """The mentions of, and comments to, one Weibo account."""

    type: Literal["weibo"]
    access_token_env: EnvName = "WEIBO_ACCESS_TOKEN"
    base_url: HttpUrl = "https://api.weibo.com/2"
    feeds: list[Literal["mentions", "comments"]] = Field(
        default_factory=lambda: ["mentions", "comments"], min_length=1
    )
    interval: Duration = timedelta(minutes=5)
    max_pages: int = Field(default=5, ge=1)
    """Pages of 200 one poll reads back in each feed towards the last item it stored."""


class WeiboConnector:
    """One ``type = "weibo"`` source."""

    type = "weibo"
    settings = WeiboSource

    def __init__(self, config: WeiboSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        token = secret(self.config.access_token_env)
        marks = _marks(cursor.cursor)
        result = PollResult()
        for read, name in enumerate(dict.fromkeys(self.config.feeds)):
            seen = marks.get(name)
            try:
                paged = await self._read(client, FEEDS[name], token, seen)
            except SourceError as error:
                if error.kind != "http_429" or not read:
                    raise
                result.rest = error.retry_after  # keep what the feeds before found
                break
            convert = self._status if name == "mentions" else self._comment
            result.mentions += [m for item in paged.items if (m := convert(item)) is not None]
            marks[name] = max((int(item.order) for item in paged.items), default=seen)
            if paged.truncated is not None:
                result.truncated = (result.truncated or 0) + paged.truncated
        result.cursor = Cursor(
            cursor=json.dumps({key: str(mark) for key, mark in marks.items() if mark is not None})
        )
        return result

    async def _read(
        self, client: httpx.AsyncClient, feed: Feed, token: str, seen: int | None
    ) -> Paged:
        """The entries of ``feed`` newer than ``seen``, paged back to it."""
        url = f"{self.config.base_url.rstrip('/')}/{feed.path}"

        async def fetch_page(params: dict[str, str]) -> Page:
            response = await _get(client, url, params | {"access_token": token})
            body = response.body
            if not isinstance(body, dict) or not objects(body.get(feed.key)):
                raise malformed(url, f"an object with a list of {feed.key}")
            items = [
                Item(entry_id, str(entry_id), entry)
                for entry in body[feed.key]
                if (entry_id := _id(entry)) is not None
            ]
            more = bool(items) and count(body.get("next_cursor")) not in (None, 0)
            oldest = min((int(item.order) for item in items), default=0)
            return Page(
                items=items,
                next={**params, "max_id": str(oldest - 1)} if more else None,
                headers=response.headers,
            )

        return await page_back(
            self.name,
            fetch_page,
            {"count": str(PAGE_SIZE)} | ({} if seen is None else {"since_id": str(seen)}),
            is_new=lambda item: seen is None or item.order > seen,
            resuming=seen is not None,
            max_pages=self.config.max_pages,
            page_size=PAGE_SIZE,
        )

    def _status(self, item: Item) -> RawMention | None:
        status = item.data
        text = string(status, "text")
        if text is None or string(status, "deleted") == "1":
            return None
        extra = {"kind": "mention"}
        reposted = obj(status, "retweeted_status")
        if (original := string(reposted, "text")) and string(reposted, "deleted") != "1":
            author = string(obj(reposted, "user"), "screen_name")
            text = f"{text}\n//@{author}: {original}" if author else f"{text}\n// {original}"
            if (reposted_id := _id(reposted)) is not None:
                extra["reposted_id"] = str(reposted_id)
        user = obj(status, "user")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=item.id,
            text=text,
            url=_url(status),
            author=_author(user),
            author_followers=count(user.get("followers_count")),
            likes=count(status.get("attitudes_count")),
            reposts=count(status.get("reposts_count")),
            replies=count(status.get("comments_count")),
            published_at=weibo_time(string(status, "created_at")),
            extra=extra,
        )

    def _comment(self, item: Item) -> RawMention | None:
        comment = item.data
        text = string(comment, "text")
        if text is None:
            return None
        status = obj(comment, "status")
        extra = {"kind": "comment"}
        if (on := string(status, "text")) is not None:
            author = _author(obj(status, "user"))
            text = f"{text}\n— on {author}: {on}" if author else f"{text}\n— on: {on}"
        if (status_id := _id(status)) is not None:
            extra["status_id"] = str(status_id)
        user = obj(comment, "user")
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=f"comment-{item.id}",
            text=text,
            url=_url(status),
            author=_author(user),
            author_followers=count(user.get("followers_count")),
            published_at=weibo_time(string(comment, "created_at")),
            extra=extra,
        )


async def _get(client: httpx.AsyncClient, url: str, params: dict[str, str]) -> JsonPage:
    """``fetch_json_page``, with Weibo's reason for a refusal (read from the body) deciding
    the error."""
    try:
        response = await fetch_json_page(client, url, params=params)
    except SourceError as error:
        if error.status is None or error.kind == "http_5xx":
            raise
        raise _refused(error, refusal(error)) from None
    if isinstance(response.body, dict) and "error_code" in response.body:
        raise _refused(SourceError("http_4xx", f"{url} refused the request"), response.body)
    return response


def _refused(error: SourceError, answer: Json) -> SourceError:
    """``error`` told by Weibo's ``{"error", "error_code", "request"}``."""
    code = count(answer.get("error_code"))
    if code is None:
        return error
    message = f"{error}: Weibo error {code} {string(answer, 'error') or ''}".rstrip()
    if code in RATE_LIMITS:
        return SourceError("http_429", message, retry_after=until_next_hour())
    if code // 100 == TOKEN_ERRORS:
        return SourceError("auth", f"{message} (renew the access token)")
    return SourceError(error.kind, message, retry_after=error.retry_after)


def until_next_hour(now: datetime | None = None) -> float:
    """Seconds until Weibo's hourly request counts reset, at the next full hour (a minute's
    margin)."""
    now = now or utcnow()
    top = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    return (top - now).total_seconds() + 60


def weibo_time(value: str | None) -> datetime | None:
    """``Tue May 31 17:46:55 +0800 2011`` as an aware time; None if absent or unreadable.
    (Parsed by hand: ``strptime``'s ``%a`` and ``%b`` follow the process's locale.)"""
    parts = (value or "").split()
    if len(parts) != 6 or parts[1] not in MONTHS:
        return None
    _, month, day, clock, zone, year = parts
    try:
        return datetime.strptime(
            f"{year}-{MONTHS.index(month) + 1}-{day} {clock} {zone}", "%Y-%m-%d %H:%M:%S %z"
        )
    except ValueError:
        return None


def _marks(value: str | None) -> dict[str, int | None]:
    """The newest id of each feed, from a stored cursor; an unreadable one starts afresh."""
    try:
        stored = json.loads(value) if value else {}
    except ValueError:
        stored = {}
    if not isinstance(stored, dict):
        return {}
    return {name: count(stored.get(name)) for name in FEEDS}


def _id(entry: Json) -> int | None:
    """A post's or comment's id: ``idstr`` (``id`` is a number JSON readers may round)."""
    return count(entry.get("idstr")) or count(entry.get("id"))


def _url(status: Json) -> str | None:
    """The web page of a post: ``weibo.com/<user id>/<post id>``."""
    user_id, status_id = count(obj(status, "user").get("id")), string(status, "idstr")
    status_id = status_id or string(status, "mid")
    return f"{WEB}/{user_id}/{status_id}" if user_id is not None and status_id else None


def _author(user: Json) -> str | None:
    name = string(user, "screen_name")
    return f"@{name}" if name else None
