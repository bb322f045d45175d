"""``page_back``: the one paging loop of the connectors that read a listing newest first
(Reddit, Hacker News, Mastodon, Bluesky, X).

A burst is exactly when a listing holds more new posts than one page: every poll pages back
until it reaches the last post it stored, bounded by ``max_pages`` and by the service's rate
limit, and says how many posts may be missing when a bound cut it short.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass

import httpx

from connectors.http import slow_down
from connectors.payload import HighWater, Json

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Item:
    """One entry of a listing: its id, its payload and its place in the listing's order."""

    order: float
    """A creation time, or an id that grows with time (an ``int``, kept exact)."""
    id: str
    data: Json


@dataclass(frozen=True, slots=True)
class Page:
    """One page of a listing, newest first."""

    items: list[Item]
    next: dict[str, str] | None
    """The query for the next, older page; None where the listing ends."""
    headers: httpx.Headers
    total: int | None = None
    """How many entries the service says match in all, where it says (for ``truncated``)."""


@dataclass(frozen=True, slots=True)
class Paged:
    """What ``page_back`` found: the new entries, newest first, each once."""

    items: list[Item]
    truncated: int | None = None
    rest: float | None = None

    def seen(self) -> Iterator[tuple[float, str]]:
        """(order, id) of every new entry, for ``HighWater.advanced``: entries that make no
        mention (no text) count as seen too, so they are not asked for again."""
        return ((item.order, item.id) for item in self.items)


async def page_back(
    source: str,
    fetch_page: Callable[[dict[str, str]], Awaitable[Page]],
    query: dict[str, str],
    *,
    is_new: Callable[[Item], bool],
    resuming: bool,
    max_pages: int,
    page_size: int,
    chronological: bool = True,
) -> Paged:
    """Read a listing newest first, page by page, until a page reaches an entry already seen
    (only in a ``chronological`` listing), the listing ends, ``max_pages`` pages were read, or
    the rate-limit window is spent.

    A first poll (not ``resuming``: there is no stored cursor to reach) reads one page.  When a
    bound stops a resumed poll early, ``truncated`` says how many entries may be missing — the
    service's total less what was read, else a page — and a warning is logged once; ``rest``
    is set whenever the last response said the window is spent.  An entry that an offset-paged
    listing shifts onto the next page is kept once.
    """
    found: dict[str, Item] = {}
    pages = read = 0
    while True:
        page = await fetch_page(query)
        pages += 1
        read += len(page.items)
        fresh = [item for item in page.items if is_new(item)]
        for item in fresh:
            found.setdefault(item.id, item)
        rest = slow_down(page.headers)
        reached = chronological and len(fresh) < len(page.items)
        if reached or page.next is None or not resuming:
            return Paged(list(found.values()), rest=rest)
        if rest is not None or pages >= max_pages:
            break
        query = page.next
    missing = page_size if page.total is None else max(1, page.total - read)
    log.warning(
        "poll cut short source=%s pages=%d reason=%s missing=%d",
        source,
        pages,
        "rate_limit" if rest is not None else "max_pages",
        missing,
    )
    return Paged(list(found.values()), truncated=missing, rest=rest)


async def page_back_to(
    mark: HighWater,
    source: str,
    fetch_page: Callable[[dict[str, str]], Awaitable[Page]],
    query: dict[str, str],
    *,
    max_pages: int,
    page_size: int,
) -> Paged:
    """``page_back`` to a ``HighWater`` cursor: an entry is new when the mark has not seen it,
    and a poll resumes once the mark holds a post."""
    return await page_back(
        source,
        fetch_page,
        query,
        is_new=lambda item: mark.is_new(item.order, item.id),
        resuming=bool(mark.newest),
        max_pages=max_pages,
        page_size=page_size,
    )
