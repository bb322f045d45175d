"""Trustpilot: the newest reviews of one business unit, from the Business Units API.

``GET /v1/business-units/{businessUnitId}/reviews?orderBy=createdat.desc&perPage=…&page=…``
with the API key in the ``apikey`` header (from the environment, never logged).  A page holds at
most 100 reviews and names the next one in its ``links`` (``rel: next-page``); only its ``page``
number is taken, and asked of the configured ``base_url``, so a link can never lead the poll to
another host.  The cursor is the newest ``createdAt`` seen plus the ids seen at that moment; a
poll pages back until it reaches it, at most ``max_pages`` pages, and stops early, asking to rest,
when rate-limit headers say the window is spent.  A poll cut short logs a warning and reports
the reviews it may have missed (``PollResult.truncated``).  The first poll reads one page.

Each review carries its stars (``rating``), title and text, language and author
(``consumer.displayName``; Trustpilot shows no follower counts: ``numberOfReviews`` goes to
``extra``, reach comes from the source's weight and ``numberOfLikes``).  The company's reply, if
any, is in ``extra``; the review's public page, where the company replies, is
``https://www.trustpilot.com/reviews/{id}``.

What it cannot see: reviews Trustpilot has not published (pending, flagged or removed), edits
to a review after it was read (a review is read once, when created), and reviews of other
business units or locations.  Trustpilot's public API allows about 833 calls in 5 minutes and
10,000 an hour per key; a 429 carries ``Retry-After``, which the scheduler honours.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Literal
from urllib.parse import parse_qs, urlsplit

import httpx
from pydantic import Field

from connectors.base import PollResult, secret
from connectors.http import fetch_json_page
from connectors.paging import Item, Page, page_back_to
from connectors.payload import HighWater, Json, count, malformed, obj, objects, parse_time, string
from connectors.reviews import identifier, review_text, stars
from monitor.config import Duration, EnvName, HttpUrl, SourceBase
from monitor.model import Cursor, RawMention

WEB = "https://www.trustpilot.com/reviews"
BusinessUnitId = Annotated[
    str, identifier(r"[0-9a-f]{24}", "a Trustpilot business unit id (24 hex digits)")
]


class TrustpilotSource(SourceBase):
    """The reviews of one Trustpilot business unit (its id is on the business's Trustpilot
    Business page, or from ``/v1/business-units/find?name=<domain>``)."""

    type: Literal["trustpilot"]
    business_unit_id: BusinessUnitId
    api_key_env: EnvName = "TRUSTPILOT_API_KEY"
    base_url: HttpUrl = "https://api.trustpilot.com/v1"
    interval: Duration = timedelta(minutes=30)
    per_page: int = Field(default=100, ge=1, le=100)
    max_pages: int = Field(default=10, ge=1)
    """Pages one poll reads back towards the last review it stored."""


class TrustpilotConnector:
    """One ``type = "trustpilot"`` source."""

    type = "trustpilot"
    settings = TrustpilotSource

    def __init__(self, config: TrustpilotSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        key = secret(self.config.api_key_env)
        mark = HighWater.load(cursor.cursor)
        query = {"orderBy": "createdat.desc", "perPage": str(self.config.per_page), "page": "1"}
        paged = await page_back_to(
            mark,
            self.name,
            lambda params: self._page(client, key, params),
            query,
            max_pages=self.config.max_pages,
            page_size=self.config.per_page,
        )
        return PollResult(
            mentions=[self._mention(item) for item in paged.items],
            cursor=mark.advanced(paged.seen()).dump() if paged.items else cursor,
            truncated=paged.truncated,
            rest=paged.rest,
        )

    async def _page(self, client: httpx.AsyncClient, key: str, params: dict[str, str]) -> Page:
        url = f"{self.config.base_url.rstrip('/')}/business-units/{self.config.business_unit_id}"
        url += "/reviews"
        response = await fetch_json_page(client, url, params=params, headers={"apikey": key})
        body = response.body
        if not isinstance(body, dict):
            raise malformed(url, "an object")
        reviews, links = body.get("reviews", []), body.get("links", [])
        if not objects(reviews):
            raise malformed(url, "'reviews' as a list of reviews")
        if not objects(links):
            raise malformed(url, "'links' as a list of links")
        items = [
            Item(created.timestamp(), review_id, review)
            for review in reviews
            if (review_id := string(review, "id"))
            and (created := parse_time(string(review, "createdAt")))
        ]
        following = _next_page(links, int(params["page"]))
        return Page(
            items=items,
            next={**params, "page": following} if following else None,
            headers=response.headers,
        )

    def _mention(self, item: Item) -> RawMention:
        review = item.data
        consumer, reply = obj(review, "consumer"), obj(review, "companyReply")
        extra = {
            "author_reviews": str(count(consumer.get("numberOfReviews")) or ""),
            "company_reply": string(reply, "text") or "",
            "company_reply_at": string(reply, "createdAt") or "",
        }
        return RawMention(
            source=self.name,
            source_type=self.type,
            external_id=item.id,
            url=f"{WEB}/{item.id}",
            text=review_text(string(review, "title"), string(review, "text")),
            author=string(consumer, "displayName"),
            likes=count(review.get("numberOfLikes")),
            language=string(review, "language"),
            published_at=parse_time(string(review, "createdAt")),
            rating=stars(review.get("stars")),
            extra={name: value for name, value in extra.items() if value},
        )


def _next_page(links: list[Json], current: int) -> str | None:
    """The number of the page the ``next-page`` link names (the one after ``current`` if the
    link gives none), or None on the last page."""
    for link in links:
        if string(link, "rel") == "next-page":
            href = string(link, "href") or ""
            number = parse_qs(urlsplit(href).query).get("page", [""])[0]
            return number if number.isdigit() else str(current + 1)
    return None
