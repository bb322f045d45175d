"""Telegram: the messages a bot receives in the groups and channels it was added to, through
the Bot API's ``getUpdates``.

What it sees: ``message``, ``channel_post`` and their edits, text or a media caption; in a
channel only if the bot is an administrator, in a group everything only if the bot's privacy
mode is off (``/setprivacy`` in @BotFather) or it is an administrator — with privacy mode on, a
group member bot gets only commands, replies to it and messages that mention it.  What it
cannot see: chats the bot is not in, anything before the bot joined, messages older than 24
hours (Telegram keeps undelivered updates no longer), follower or member counts (``getUpdates``
gives none), reactions and views.  A bot has one update queue: no other program (nor a webhook:
Telegram then answers 409) may read the same bot's updates.

The cursor is the next ``offset``: the last ``update_id`` read plus one.  Asking with it both
skips and confirms everything before it, so Telegram drops those updates and a re-poll never
sees them again.  A poll reads pages of 100 updates until one is not full, at most
``max_pages``; a poll cut short logs a warning and says so (``PollResult.truncated``) — the rest
waits on Telegram's side for the next poll, which comes sooner.

``timeout`` is 0 (short polling), not the long poll the Bot API offers: a long poll holds the
request open until an update arrives, which would hold one of the shared client's connections
and this source's poll lease for the whole wait and run into the HTTP layer's per-request
deadline.  Polling every ``interval`` sees the same updates, a little later.

An edit is the edited message again under the same id (``<chat id>:<message id>``), so a
message already stored is not stored twice.  Messages carry no language (``from.language_code``
is the sender's app language, not the message's): it is left to detection.

Errors: Telegram answers ``{"ok": false, "error_code": …, "description": …}``, with
``parameters.retry_after`` on a 429 (flood control), which is honoured.  The bot token is part
of the URL's path, which the HTTP layer would name in its errors: it is cut out of every error
this connector raises.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Literal

import httpx
from pydantic import Field

from connectors.base import PollResult, SourceError, secret
from connectors.http import fetch_json
from connectors.payload import Json, count, malformed, obj, objects, refusal, string
from monitor.config import Duration, EnvName, HttpUrl, SourceBase
from monitor.model import Cursor, RawMention

log = logging.getLogger(__name__)

LIMIT = 100
KINDS = ("message", "channel_post", "edited_message", "edited_channel_post")
REDACTED = "<token>"
PRIVATE_CHAT_PREFIX = "-100"
"""A supergroup's or channel's id is its internal id after ``-100``; ``t.me/c/<internal id>/…``
opens one of its messages for the chat's members."""


class TelegramSource(SourceBase):
    """The Bot API's ``getUpdates`` for one bot."""

    type: Literal["telegram"]
    token_env: EnvName = "TELEGRAM_BOT_TOKEN"
    base_url: HttpUrl = "https://api.telegram.org"
    interval: Duration = timedelta(minutes=1)
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 updates one poll may read."""


class TelegramConnector:
    """One ``type = "telegram"`` source."""

    type = "telegram"
    settings = TelegramSource

    def __init__(self, config: TelegramSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        token = secret(self.config.token_env)
        url = f"{self.config.base_url.rstrip('/')}/bot{token}/getUpdates"
        offset = count(cursor.cursor)
        mentions: list[RawMention] = []
        for _ in range(self.config.max_pages):
            params = {
                "limit": str(LIMIT),
                "timeout": "0",
                "allowed_updates": json.dumps(KINDS),
            }
            if offset is not None:
                params["offset"] = str(offset)
            try:
                updates = await _updates(client, url, params)
            except SourceError as error:
                raise _redacted(error, token) from None
            for update_id, update in updates:
                offset = max(offset or 0, update_id + 1)
                if (mention := self._mention(update)) is not None:
                    mentions.append(mention)
            if len(updates) < LIMIT:
                return PollResult(mentions=mentions, cursor=_cursor(offset))
        log.warning(
            "poll cut short source=%s pages=%d reason=max_pages missing=%d",
            self.name,
            self.config.max_pages,
            LIMIT,
        )
        return PollResult(mentions=mentions, cursor=_cursor(offset), truncated=LIMIT)

    def _mention(self, update: Json) -> RawMention | None:
        kind = next((kind for kind in KINDS if isinstance(update.get(kind), dict)), None)
        if kind is None:
            return None
        message = update[kind]
        text = string(message, "text") or string(message, "caption")
        message_id, date = count(message.get("message_id")), count(message.get("date"))
        chat = obj(message, "chat")
        chat_id = chat.get("id")
        if text is None or message_id is None or date is None or not isinstance(chat_id, int):
            return None
        extra = {"chat_type": string(chat, "type") or "", "chat_id": str(chat_id)}
        if title := string(chat, "title"):
            extra["chat_title"] = title
        if kind.startswith("edited_"):
            extra["edited"] = "true"
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=f"{chat_id}:{message_id}",
            text=text,
            url=_link(chat, message_id),
            author=_author(message),
            published_at=datetime.fromtimestamp(date, UTC),
            extra=extra,
        )


async def _updates(
    client: httpx.AsyncClient, url: str, params: dict[str, str]
) -> list[tuple[int, Json]]:
    """One ``getUpdates`` answer's updates that have an ``update_id``, with it."""
    try:
        body = await fetch_json(client, url, params=params)
    except SourceError as error:
        if error.status is None or error.kind == "http_5xx" or error.retry_after is not None:
            raise
        raise _refused(error, refusal(error)) from None
    if not isinstance(body, dict):
        raise malformed(url, "an object")
    if body.get("ok") is not True:
        raise _refused(SourceError("http_4xx", f"{url} refused the request"), body)
    if not objects(body.get("result")):
        raise malformed(url, "'result' as a list of updates")
    return [
        (update_id, update)
        for update in body["result"]
        if (update_id := count(update.get("update_id"))) is not None
    ]


def _refused(error: SourceError, answer: Json) -> SourceError:
    """``error`` told by Telegram's answer ``{"ok": false, "error_code", "description",
    "parameters": {"retry_after"}}``."""
    code, description = count(answer.get("error_code")), string(answer, "description")
    message = f"{error}: {description}" if description else str(error)
    retry_after = count(obj(answer, "parameters").get("retry_after"))
    if code == 429 or retry_after is not None:
        wait = float(retry_after) if retry_after is not None else error.retry_after
        return SourceError("http_429", message, retry_after=wait)
    if code in (401, 404):  # 404: Telegram knows no bot with this token
        return SourceError("auth", f"{message} (is the bot token right?)")
    return SourceError(error.kind, message, retry_after=error.retry_after)


def _redacted(error: SourceError, token: str) -> SourceError:
    """``error`` without the bot token, which the URL's path carries."""
    message = str(error).replace(token, REDACTED)
    return SourceError(error.kind, message, retry_after=error.retry_after)


def _cursor(offset: int | None) -> Cursor:
    return Cursor(cursor=None if offset is None else str(offset))


def _link(chat: Json, message_id: int) -> str | None:
    """``t.me/<chat>/<id>`` for a public chat; ``t.me/c/<internal id>/<id>`` (for its members)
    for a private supergroup or channel; None for other chats (a private chat's username is
    its user's, not a link to its messages)."""
    if string(chat, "type") not in ("supergroup", "channel"):
        return None
    if username := string(chat, "username"):
        return f"https://t.me/{username}/{message_id}"
    chat_id = str(chat.get("id"))
    if chat_id.startswith(PRIVATE_CHAT_PREFIX):
        return f"https://t.me/c/{chat_id.removeprefix(PRIVATE_CHAT_PREFIX)}/{message_id}"
    return None


def _author(message: Json) -> str | None:
    """The chat a message was sent on behalf of (``sender_chat``: a channel's posts, an
    anonymous group admin), by its title; else ``@username`` of the sender, else their name;
    else the chat's title."""
    if title := string(obj(message, "sender_chat"), "title"):
        return title
    sender = obj(message, "from")
    if username := string(sender, "username"):
        return f"@{username}"
    name = " ".join(part for key in ("first_name", "last_name") if (part := string(sender, key)))
    return name or string(obj(message, "chat"), "title")
