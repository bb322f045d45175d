"""Reading API payloads defensively: JSON from a source is untrusted input.

A field of the wrong type, a missing key or HTML where text was expected must give a clear
``malformed`` error or a ``None``, never a ``KeyError`` or ``TypeError`` that crashes a poll.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any

from connectors.base import SourceError
from monitor.http import redact_url
from monitor.model import Cursor, RawMention

Json = dict[str, Any]


def obj(data: Json, key: str) -> Json:
    """``data[key]`` if it is an object, else an empty one."""
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def string(data: Json, key: str) -> str | None:
    """``data[key]`` if it is a non-empty string."""
    value = data.get(key)
    return value if isinstance(value, str) and value else None


def count(value: Any) -> int | None:
    """A count: an integer, or a string of digits as some APIs send (``"48213"``)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return int(value) if isinstance(value, str) and value.isdigit() else None


def objects(value: Any) -> bool:
    """Whether ``value`` is a list of objects."""
    return isinstance(value, list) and all(isinstance(item, dict) for item in value)


def parse_time(value: str | None) -> datetime | None:
    """An ISO 8601 time as aware UTC (no offset means UTC); None if absent or unreadable."""
    if not value:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def malformed(url: str, expected: str) -> SourceError:
    return SourceError("malformed", f"{redact_url(url)} did not return {expected}")


def refusal(error: SourceError) -> Json:
    """The JSON object an API sent with a refusal (``error.body``), which some APIs say why in;
    empty when the body is none, cut short or not an object."""
    try:
        found = json.loads(error.body)
    except ValueError:
        return {}
    return found if isinstance(found, dict) else {}


class _TextExtractor(HTMLParser):
    # Tags that separate words: "<p>one</p><p>two</p>" is "one two", "<b>Acme</b>'s" is "Acme's".
    _BLOCKS = frozenset(
        {"p", "div", "br", "hr", "li", "dd", "dt", "tr", "td", "th", "pre", "blockquote"}
        | {"figcaption", "h1", "h2", "h3", "h4", "h5", "h6"}
    )
    _HIDDEN = frozenset({"script", "style", "template"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._tag(tag, +1)

    def handle_endtag(self, tag: str) -> None:
        self._tag(tag, -1)

    def _tag(self, tag: str, step: int) -> None:
        if tag in self._HIDDEN:
            self._hidden = max(0, self._hidden + step)
        elif tag in self._BLOCKS:
            self.parts.append(" ")

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def html_to_text(markup: str) -> str:
    """Text of an HTML fragment: tags dropped, entities decoded, whitespace collapsed."""
    parser = _TextExtractor()
    parser.feed(markup)
    parser.close()
    return " ".join("".join(parser.parts).split())


@dataclass(frozen=True, slots=True)
class HighWater:
    """A cursor for APIs searched by time: the newest creation time seen and the ids seen at
    that very time, so an item created in the same second as the last one is neither lost nor
    reported twice."""

    newest: float = 0.0
    ids: frozenset[str] = frozenset()

    @classmethod
    def load(cls, value: str | None) -> HighWater:
        """From a stored cursor; an unreadable one starts afresh."""
        try:
            data = json.loads(value) if value else {}
            return cls(float(data.get("newest", 0.0)), frozenset(map(str, data.get("ids", []))))
        except (ValueError, TypeError, AttributeError):
            return cls()

    def is_new(self, created: float, item: str) -> bool:
        return created > self.newest or (created == self.newest and item not in self.ids)

    def advanced(self, items: Iterable[tuple[float, str]]) -> HighWater:
        """The mark after seeing ``items``: (creation time, id) pairs."""
        newest, ids = self.newest, set(self.ids)
        for created, item in items:
            if created > newest:
                newest, ids = created, set()
            if created == newest:
                ids.add(item)
        return HighWater(newest, frozenset(ids))

    @staticmethod
    def of(mentions: Iterable[RawMention]) -> Iterator[tuple[float, str]]:
        """(creation time, id) of mentions that all have ``published_at``."""
        for mention in mentions:
            assert mention.published_at is not None
            yield mention.published_at.timestamp(), mention.external_id

    def dump(self) -> Cursor:
        return Cursor(cursor=json.dumps({"newest": self.newest, "ids": sorted(self.ids)}))
