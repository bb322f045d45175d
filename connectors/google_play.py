"""Google Play: the reviews of one of the brand's own apps, from the Play Developer API.

``GET /androidpublisher/v3/applications/{packageName}/reviews`` (``reviews.list``) with a
service account's access token (``connectors.google_auth``: the key file's path is in the
environment variable ``credentials_env``; the account must be invited to the app in Play
Console with permission to see and reply to reviews).  A page holds up to ``maxResults`` (100)
reviews, newest first, and ``tokenPagination.nextPageToken`` names the next (``token``).  The
cursor is the newest ``lastModified`` seen plus the ids seen at that moment; a poll pages back
until it reaches it, at most ``max_pages`` pages, and a poll cut short logs a warning and reports
the reviews it may have missed (``PollResult.truncated``).  The first poll reads one page.

Each review carries its stars (``rating``), text (Play joins a title to it with a tab), the
reviewer's name and language, its thumbs-up count (as likes), the app version, device and
Android version and, when the developer answered, the answer (all but the first three in
``extra``).  A review edited by its author is modified again and comes back with its new text,
under its own id.

What it cannot see: only reviews created or modified in the last 7 days are returned (the API
keeps no history: a source switched off for longer misses the rest), star ratings without text
are not returned at all, and only apps the service account was given access to.  Quota: 200
``reviews.list`` requests an hour per app; a poll every 30 minutes of at most 10 pages stays well
under it.  A 429 (``RESOURCE_EXHAUSTED``) is an error the scheduler backs off from; any other
refusal (401, 403, 404) drops the cached token and says what to check.  A review's URL is its
place on the app's Play Store page (``reviewId``); replies are written in Play Console under
Ratings and reviews.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

import httpx
from pydantic import Field

from connectors.base import PollResult, SourceError
from connectors.google_auth import AccessToken
from connectors.http import fetch_json_page
from connectors.paging import Item, Page, page_back_to
from connectors.payload import HighWater, Json, count, malformed, obj, objects, string
from connectors.reviews import identifier, review_text, stars
from monitor.config import Duration, EnvName, HttpUrl, SourceBase
from monitor.model import Cursor, RawMention

SCOPE = "https://www.googleapis.com/auth/androidpublisher"
PAGE_SIZE = 100
STORE = "https://play.google.com/store/apps/details"

PackageName = Annotated[
    str,
    identifier(
        r"[A-Za-z][A-Za-z0-9_]*(\.[A-Za-z][A-Za-z0-9_]*)+",
        "an Android package name such as com.example.app",
    ),
]


class GooglePlaySource(SourceBase):
    """The last week's reviews of one of the brand's apps on Google Play."""

    type: Literal["google_play"]
    package_name: PackageName
    credentials_env: EnvName = "GOOGLE_PLAY_CREDENTIALS"
    """The variable holding the path of the service account's JSON key file."""
    base_url: HttpUrl = "https://androidpublisher.googleapis.com"
    interval: Duration = timedelta(minutes=30)
    max_pages: int = Field(default=10, ge=1)
    """Pages of 100 reviews one poll reads back towards the last review it stored."""


class GooglePlayConnector:
    """One ``type = "google_play"`` source."""

    type = "google_play"
    settings = GooglePlaySource

    def __init__(self, config: GooglePlaySource) -> None:
        self.config = config
        self.name = config.name
        self.token = AccessToken(config.credentials_env, SCOPE)

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        token = await self.token.get(client)
        mark = HighWater.load(cursor.cursor)
        paged = await page_back_to(
            mark,
            self.name,
            lambda params: self._page(client, token, params),
            {"maxResults": str(PAGE_SIZE)},
            max_pages=self.config.max_pages,
            page_size=PAGE_SIZE,
        )
        return PollResult(
            mentions=[self._mention(item) for item in paged.items],
            cursor=mark.advanced(paged.seen()).dump() if paged.items else cursor,
            truncated=paged.truncated,
            rest=paged.rest,
        )

    async def _page(self, client: httpx.AsyncClient, token: str, params: dict[str, str]) -> Page:
        package = self.config.package_name
        url = f"{self.config.base_url.rstrip('/')}/androidpublisher/v3/applications/{package}"
        url += "/reviews"
        try:
            response = await fetch_json_page(
                client, url, params=params, headers={"Authorization": f"Bearer {token}"}
            )
        except SourceError as error:
            if error.kind != "http_4xx":
                raise
            self.token.forget()
            raise SourceError(
                error.kind,
                f"{error}: check that the Google Play Android Developer API is enabled in the "
                f"service account's project and that the account has access to {package} in "
                "Play Console (Users and permissions)",
            ) from None
        body = response.body
        if not isinstance(body, dict):
            raise malformed(url, "an object")
        reviews = body.get("reviews", [])  # absent when there are none
        if not objects(reviews):
            raise malformed(url, "'reviews' as a list of reviews")
        items = [
            Item(modified.timestamp(), review_id, review)
            for review in reviews
            if (review_id := string(review, "reviewId"))
            and (modified := _moment(obj(_comment(review, "userComment"), "lastModified")))
        ]
        following = string(obj(body, "tokenPagination"), "nextPageToken")
        return Page(
            items=items,
            next={**params, "token": following} if following else None,
            headers=response.headers,
        )

    def _mention(self, item: Item) -> RawMention:
        review = item.data
        user, developer = _comment(review, "userComment"), _comment(review, "developerComment")
        replied = _moment(obj(developer, "lastModified"))
        android = count(user.get("androidOsVersion"))
        extra = {
            "app_version": string(user, "appVersionName"),
            "device": string(user, "device"),
            "android": str(android) if android else None,
            "developer_reply": string(developer, "text"),
            "developer_reply_at": replied.isoformat() if replied else None,
        }
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=item.id,
            url=_store_url(self.config.package_name, item.id),
            text=review_text(*(string(user, "text") or "").split("\t")),
            author=string(review, "authorName"),
            likes=count(user.get("thumbsUpCount")),
            language=string(user, "reviewerLanguage"),
            published_at=_moment(obj(user, "lastModified")),
            rating=stars(user.get("starRating")),
            extra={name: value for name, value in extra.items() if value},
        )


def _store_url(package: str, review_id: str) -> str:
    """The review on the app's Play Store page (ids start ``gp:``, kept readable)."""
    return f"{STORE}?{urlencode({'id': package, 'reviewId': review_id}, safe=':')}"


def _comment(review: Json, kind: str) -> Json:
    """The first ``userComment`` or ``developerComment`` of a review's ``comments``."""
    comments = review.get("comments")
    for comment in comments if isinstance(comments, list) else []:
        if isinstance(comment, dict) and isinstance(found := comment.get(kind), dict):
            return found
    return {}


def _moment(timestamp: Json) -> datetime | None:
    """A protobuf ``Timestamp`` (``seconds`` as a string of digits, ``nanos``) as UTC."""
    seconds = count(timestamp.get("seconds"))
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds + (count(timestamp.get("nanos")) or 0) / 1e9, UTC)
