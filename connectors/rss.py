"""RSS and Atom feeds: Google Alerts, Google News searches, YouTube channels, blogs.

The feed is fetched by the shared HTTP layer (conditional GET, size cap) and only the body is handed
to feedparser, so feedparser never touches the network or the file system itself.

An entry's author is its own, else its ``<source>`` (Google News names the publication there),
else the feed's title.  Google Alerts entries have an empty author, and the feed's title is the
alert's name ("Google Alert - Acme"), the same for every article: their author is the domain of
the site they link to, through Google's redirect (``https://www.google.com/url?…&url=<article>``),
which is unwrapped for the entry's URL too.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import urlsplit

import feedparser
import httpx
from pydantic import Field

from connectors.base import PollResult, SourceError
from connectors.http import Fetched, fetch
from connectors.payload import html_to_text
from monitor import workers
from monitor.config import HttpUrl, SourceBase
from monitor.http import redact_url
from monitor.model import Cursor, RawMention
from monitor.urls import canonical_url, unwrap_redirect

Entry = dict[str, Any]
GOOGLE_ALERTS_ID = "tag:google.com,2013:googlealerts/"
"""How every Google Alerts entry id starts, whatever the alert's language."""

# feedparser asks xml.sax for libxml2's driver before expat on every parse; where it is not
# installed the failed import is not cached, so each parse searched sys.path again.
feedparser.api.PREFERRED_XML_PARSERS[:] = []


class RssSource(SourceBase):
    """Any RSS or Atom feed: Google Alerts, Google News searches, blogs, YouTube channels."""

    type: Literal["rss"]
    url: HttpUrl
    max_bytes: int = Field(default=5_000_000, ge=1_000)


class RssConnector:
    """One ``type = "rss"`` source."""

    type = "rss"
    settings = RssSource

    def __init__(self, config: RssSource) -> None:
        self.config = config
        self.name = config.name

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult:
        validators = {"If-None-Match": cursor.etag, "If-Modified-Since": cursor.last_modified}
        fetched = await fetch(
            client,
            self.config.url,
            headers={name: value for name, value in validators.items() if value},
            max_bytes=self.config.max_bytes,
        )
        new_cursor = Cursor(
            cursor=cursor.cursor,
            etag=fetched.headers.get("ETag") or cursor.etag,
            last_modified=fetched.headers.get("Last-Modified") or cursor.last_modified,
        )
        if fetched.status == 304:
            return PollResult(cursor=new_cursor, not_modified=True)
        # Parsing is the costly part of a poll: in a worker process where there are cores to
        # spare, so the event loop keeps fetching the other sources.
        mentions = await workers.run(mentions_in, fetched, self.name)
        return PollResult(mentions=mentions, cursor=new_cursor)


def mentions_in(fetched: Fetched, source: str) -> list[RawMention]:
    """The mentions of a fetched feed, first of each id or URL, for the source named ``source``;
    ``SourceError("malformed")`` if it is not a feed."""
    parsed = _parse(fetched)
    feed: Entry = parsed.get("feed", {})
    mentions: list[RawMention] = []
    seen: set[str] = set()
    for entry in parsed.get("entries", []):
        mention = _mention(entry, feed, source)
        keys = {mention.external_id}
        if url := canonical_url(mention.url):
            keys.add(url)
        if keys & seen:
            continue
        seen |= keys
        mentions.append(mention)
    return mentions


def _mention(entry: Entry, feed: Entry, source: str) -> RawMention:
    link = entry.get("link") or None
    url = unwrap_redirect(link) if link else None
    external_id = entry.get("id") or link or _fallback_id(entry)
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    views = (entry.get("media_statistics") or {}).get("views", "")
    site = _domain(url) if external_id.startswith(GOOGLE_ALERTS_ID) else None
    return RawMention(
        source=source,
        source_type=RssConnector.type,
        external_id=external_id,
        url=url,
        text=_join(_text(entry, "title"), _text(entry, "summary")),
        author=_first_text(
            site,
            entry.get("author"),
            (entry.get("source") or {}).get("title"),
            feed.get("title"),
        ),
        published_at=datetime(*stamp[:6], tzinfo=UTC) if stamp else None,
        language=(entry.get("title_detail") or {}).get("language") or feed.get("language"),
        views=int(views) if views.isdigit() else None,
    )


def _parse(fetched: Fetched) -> feedparser.FeedParserDict:
    """Parse the body, or raise ``SourceError("malformed")`` if it is not a feed."""
    parsed = feedparser.parse(
        # A file object, not bytes: feedparser would try to open a bytes argument as a path.
        io.BytesIO(fetched.content),
        response_headers={
            # Without a Content-Type feedparser assumes ISO-8859-1; XML's own default is UTF-8.
            "content-type": fetched.headers.get("Content-Type", "application/xml"),
            "content-language": fetched.headers.get("Content-Language", ""),
            "content-location": fetched.url,
        },
    )
    if parsed.get("entries"):
        return parsed  # usable even if slightly broken (bozo)
    error = parsed.get("bozo_exception")
    # feedparser files harmless oddities (wrong Content-Type, charset mismatch) under this base.
    broken = parsed.get("bozo") and not isinstance(error, feedparser.ThingsNobodyCaresAboutButMe)
    if broken or not parsed.get("version"):
        content_type = fetched.headers.get("Content-Type", "no content type")
        reason = f": {error}" if broken else ""
        raise SourceError(
            "malformed",
            f"{redact_url(fetched.url)} is not an RSS or Atom feed ({content_type}){reason}",
        )
    return parsed


def _text(entry: Entry, key: str) -> str:
    """Plain text of a feed field, whose markup type feedparser records in ``<key>_detail``."""
    value = entry.get(key) or ""
    if "html" in (entry.get(f"{key}_detail") or {}).get("type", "text/html"):
        return html_to_text(value)
    return " ".join(value.split())


def _join(title: str, summary: str) -> str:
    if not (title and summary):
        return title or summary
    return f"{title} {summary}" if title[-1] in ".!?…" else f"{title}. {summary}"


def _first_text(*candidates: str | None) -> str | None:
    return next((c.strip() for c in candidates if c and c.strip()), None)


def _domain(url: str | None) -> str | None:
    """The site of ``url``: its host without ``www.``."""
    try:
        host = urlsplit(url).hostname if url else None
    except ValueError:  # a broken IPv6 literal
        return None
    return host.removeprefix("www.") if host else None


def _fallback_id(entry: Entry) -> str:
    """A stable id for an entry with neither id nor link."""
    key = f"{entry.get('title', '')}\n{entry.get('published') or entry.get('updated', '')}"
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()
