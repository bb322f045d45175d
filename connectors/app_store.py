"""Apple App Store: the newest customer reviews of one app, per country, from Apple's public feed.

``https://itunes.apple.com/{country}/rss/customerreviews/page={n}/id={app_id}/sortby=mostrecent/json``
needs no key.  It is the iTunes RSS feed turned into JSON: every value is an object with a
``label`` (``feed.entry[].im:rating.label`` is the stars), ``feed.entry`` is a single object when
there is one entry and is missing when there are none, and some responses start page 1 with an
entry for the app itself (no ``im:rating``), which is skipped.  A page holds 50 reviews and Apple
serves pages 1 to 10 only, so at most the newest 500 reviews of each country can be seen.

Review ids grow with time; the cursor is the newest id seen in each country.  A poll reads each
country's feed back, page by page, until it reaches that id, at most ``max_pages`` pages (and
never past page 10: a tenth full page that has not reached the cursor is reported as cut short
like ``max_pages``, ``PollResult.truncated``).  A country's first poll reads one page.  A review
its author edits keeps its id and is not reported again.

What it cannot see: reviews without text (star ratings alone are not in the feed), the reviewer's
language (the country is in ``extra``), Apple's developer responses, and anything older than the
newest 500 per country.  Apple gives a review no address of its own: its URL is the app's page in
that country's store with the reviews shown, plus the review's id as a ``review`` parameter the
store ignores (storage takes mentions with one URL for one, so each review needs its own);
replies are written in App Store Connect.  Apple publishes no rate limit; a 429 or 403 from its
CDN is an error like any other and the scheduler backs off.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import urlencode

import httpx
from pydantic import Field

from connectors.base import PollResult
from connectors.http import fetch_json_page
from connectors.paging import Item, Page, Paged, page_back
from connectors.payload import Json, malformed, obj, objects, parse_time, string
from connectors.reviews import identifier, review_text, stars
from monitor.config import Duration, HttpUrl, SourceBase
from monitor.model import Cursor, RawMention

PAGE_SIZE = 50
LAST_PAGE = 10
"""Apple serves pages 1 to 10 of the feed."""
STORE = "https://apps.apple.com"

Country = Annotated[
    str, identifier(r"[a-z]{2}", 'a store\'s two-letter country code, such as "us"')
]
AppId = Annotated[
    str, identifier(r"[0-9]{1,15}", "an App Store app id: the number after 'id' in its store URL")
]


class AppStoreSource(SourceBase):
    """Apple's customer-reviews feed of one app, in each of ``countries`` (two-letter store
    codes, lowercase: ``us``, ``gb``, ``my``)."""

    type: Literal["app_store"]
    app_id: AppId
    """The number in the app's store URL (``apps.apple.com/us/app/…/id284882215``)."""
    countries: list[Country] = Field(default=["us"], min_length=1, max_length=175)
    base_url: HttpUrl = "https://itunes.apple.com"
    interval: Duration = timedelta(minutes=30)
    max_pages: int = Field(default=LAST_PAGE, ge=1, le=LAST_PAGE)
    """Pages of 50 reviews one poll reads back in each country (Apple serves 10)."""


class AppStoreConnector:
    """One ``type = "app_store"`` source."""

    type = "app_store"
    settings = AppStoreSource

    def __init__(self, config: AppStoreSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        newest = _load(cursor.cursor)
        mentions: list[RawMention] = []
        truncated: int | None = None
        for country in dict.fromkeys(self.config.countries):
            paged = await self._country(client, country, newest.get(country))
            mentions += [self._mention(country, item) for item in paged.items]
            if paged.items:
                newest[country] = max(int(item.id) for item in paged.items)
            if paged.truncated is not None:
                truncated = (truncated or 0) + paged.truncated
        return PollResult(
            mentions=mentions,
            cursor=Cursor(cursor=json.dumps(newest, sort_keys=True) if newest else None),
            truncated=truncated,
        )

    async def _country(self, client: httpx.AsyncClient, country: str, seen: int | None) -> Paged:
        return await page_back(
            f"{self.name}/{country}",
            lambda query: self._page(client, country, int(query["page"])),
            {"page": "1"},
            is_new=lambda item: seen is None or int(item.id) > seen,
            resuming=seen is not None,
            max_pages=self.config.max_pages,
            page_size=PAGE_SIZE,
        )

    async def _page(self, client: httpx.AsyncClient, country: str, number: int) -> Page:
        url = (
            f"{self.config.base_url.rstrip('/')}/{country}/rss/customerreviews/page={number}"
            f"/id={self.config.app_id}/sortby=mostrecent/json"
        )
        response = await fetch_json_page(client, url)
        body = response.body
        feed = body.get("feed") if isinstance(body, dict) else None
        if not isinstance(feed, dict):
            raise malformed(url, "an object with a 'feed'")
        entries = feed.get("entry", [])
        if isinstance(entries, dict):  # one entry: the feed's XML had one <entry>
            entries = [entries]
        if not objects(entries):
            raise malformed(url, "'feed.entry' as a list of reviews")
        reviews = [entry for entry in entries if "im:rating" in entry]  # not the app's entry
        items = [
            Item(int(review_id), review_id, review)
            for review in reviews
            if (review_id := _label(review, "id")) and review_id.isdigit()
        ]
        # A full tenth page is followed by a page the poll never asks for (max_pages <= 10):
        # so that page_back reports what lies beyond it as missing.
        full = len(reviews) >= PAGE_SIZE
        return Page(
            items=items,
            next={"page": str(number + 1)} if full else None,
            headers=response.headers,
        )

    def _mention(self, country: str, item: Item) -> RawMention:
        review = item.data
        version = _label(review, "im:version")
        extra = {"country": country} | ({"version": version} if version else {})
        page = f"{STORE}/{country}/app/id{self.config.app_id}"
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=item.id,
            url=f"{page}?{urlencode({'see-all': 'reviews', 'review': item.id})}",
            text=review_text(_label(review, "title"), _label(review, "content")),
            author=_label(obj(review, "author"), "name"),
            rating=stars(_label(review, "im:rating")),
            published_at=parse_time(_label(review, "updated")),
            extra=extra,
        )


def _label(data: Json, key: str) -> str | None:
    """``data[key].label``: how the feed wraps every value."""
    return string(obj(data, key), "label")


def _load(value: str | None) -> dict[str, int]:
    """The newest review id seen per country, from a stored cursor; unreadable starts afresh."""
    try:
        data = json.loads(value) if value else {}
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {
        country: int(newest)
        for country, newest in data.items()
        if isinstance(newest, int) and not isinstance(newest, bool)
    }
