"""Mastodon: an instance's public hashtag timelines and, with an access token, status search.

Each timeline (``/api/v1/timelines/tag/<tag>``) and the search (``/api/v2/search``) is read with
its own ``since_id``, kept together as JSON in the cursor; Mastodon ids are numbers in strings
and grow with time.  One poll reads the newest 40 statuses of each: a busy hashtag polled rarely
can overflow that.  Boosts are read as the boosted status, once.  Status text is HTML.
"""

from __future__ import annotations

import json
import os
from urllib.parse import quote

import httpx

from connectors.base import Cursor, PollResult, SourceError
from connectors.http import fetch_json
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
from monitor.config import MastodonSource
from monitor.model import RawMention

LIMIT = "40"


class MastodonConnector:
    """One ``type = "mastodon"`` source."""

    type = "mastodon"

    def __init__(self, config: MastodonSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        since = _read_cursor(cursor.cursor)
        base = self.config.instance.rstrip("/")
        feeds = [
            (
                f"tag:{tag.lstrip('#').lower()}",
                f"{base}/api/v1/timelines/tag/{quote(tag.lstrip('#'))}",
                {},
                None,
            )
            for tag in self.config.hashtags
        ]
        if self.config.query is not None:
            token = self._token()
            params = {"q": self.config.query, "type": "statuses", "resolve": "false"}
            feeds.append(("search", f"{base}/api/v2/search", params, token))
        found: dict[str, RawMention] = {}
        for key, url, params, token in feeds:
            query = {**params, "limit": LIMIT}
            if key in since:
                query["since_id"] = str(since[key])
            headers = {"Authorization": f"Bearer {token}"} if token else None
            body = await fetch_json(client, url, params=query, headers=headers)
            statuses = body.get("statuses") if key == "search" and isinstance(body, dict) else body
            if not objects(statuses):
                raise malformed(url, "a list of statuses")
            previous = since.get(key, 0)
            for status in statuses:  # type: ignore[union-attr]
                status_id = _id(status)
                if status_id is None or status_id <= previous:
                    continue
                since[key] = max(since.get(key, 0), status_id)
                original = obj(status, "reblog") or status
                if (mention := self._mention(original)) is not None:
                    found.setdefault(mention.external_id, mention)
        return PollResult(mentions=list(found.values()), cursor=Cursor(cursor=json.dumps(since)))

    def _token(self) -> str:
        variable = self.config.token_env
        token = os.environ.get(variable or "")
        if not token:
            raise SourceError("auth", f"environment variable {variable} is not set")
        return token

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


def _id(status: Json) -> int | None:
    value = string(status, "id")
    return int(value) if value and value.isdigit() else None


def _read_cursor(value: str | None) -> dict[str, int]:
    try:
        data = json.loads(value) if value else {}
        return {str(k): int(v) for k, v in data.items()}
    except (ValueError, TypeError, AttributeError):
        return {}
