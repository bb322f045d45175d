"""Mentions pushed as JSON lines (``brandmon ingest``), one object per line.

Fields: ``id``, ``source``, ``text``, ``author``, ``followers``, ``likes``, ``reposts``,
``replies``, ``views``, ``url``, ``published_at`` (ISO 8601 or epoch seconds), ``lang``,
``rating`` (a review's stars, 1 to 5).
``text`` is required, and ``id`` unless ``url`` is given (an id of blanks counts as none).  A
``url`` that is not http(s) (``javascript:``, ``data:``…) is dropped and the mention kept.  Other
fields are ignored, so exports from other tools can be fed as they are.  A bad line (not JSON,
nested deeper than ``MAX_DEPTH``, a bad field) is reported with its number and skipped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any, BinaryIO

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from monitor.model import RawMention, storable_text, web_url

MAX_DEPTH = 64
"""Deepest nesting of arrays and objects accepted in one JSON document.  A mention needs two;
Python's parser recurses once per level and dies with ``RecursionError`` near 1,000."""

_STRUCTURE = re.compile(r'["\[\]{}]')
# the rest of a JSON string after its opening quote; each character can match one way only
_STRING_REST = re.compile(r'[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
"""A JSON string (skipped whole, so brackets inside it do not count) or a bracket."""


class _Line(BaseModel):
    model_config = ConfigDict(extra="ignore", coerce_numbers_to_str=True)

    id: str | None = None
    source: str | None = Field(default=None, min_length=1, max_length=200)
    text: str = Field(min_length=1)
    author: str | None = None
    followers: int | None = Field(default=None, ge=0)
    likes: int | None = Field(default=None, ge=0)
    reposts: int | None = Field(default=None, ge=0)
    replies: int | None = Field(default=None, ge=0)
    views: int | None = Field(default=None, ge=0)
    rating: int | None = Field(default=None, ge=1, le=5)
    url: str | None = None
    published_at: datetime | None = None
    lang: str | None = None

    @field_validator("id")
    @classmethod
    def _not_blank(cls, value: str | None) -> str | None:
        return value if value and value.strip() else None

    @field_validator("url")
    @classmethod
    def _web(cls, value: str | None) -> str | None:
        return web_url(value)

    @model_validator(mode="after")
    def _identified(self) -> _Line:
        if not (self.id or self.url):
            raise ValueError("needs an 'id' or a 'url' to tell it apart from other mentions")
        return self


@dataclass(frozen=True, slots=True)
class LineError:
    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(slots=True)
class Utf8Lines:
    """A file's lines as text.  Bytes that are not UTF-8 are read as U+FFFD, so the mention is
    kept with a visible mark where they were; each such line's number is handed to ``bad``,
    and they are counted (``invalid``)."""

    handle: BinaryIO
    bad: Callable[[int], None] = lambda number: None
    invalid: int = 0

    def __iter__(self) -> Iterator[str]:
        with self.handle:
            for number, line in enumerate(self.handle, start=1):
                try:
                    text = line.decode("utf-8")
                except UnicodeDecodeError:
                    self.invalid += 1
                    self.bad(number)
                    text = line.decode("utf-8", errors="replace")
                yield text


def read_jsonl(lines: Iterable[str]) -> Iterator[RawMention | LineError]:
    """Yield a ``RawMention`` for each good line and a ``LineError`` for each bad one."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        if too_deep(line):
            yield LineError(number, f"not JSON we accept (nested deeper than {MAX_DEPTH} levels)")
            continue
        try:
            yield _parsed(line)
        except json.JSONDecodeError as exc:
            yield LineError(number, f"not JSON ({exc.msg} at column {exc.colno})")
        except MentionError as exc:
            yield LineError(number, str(exc))
        except ValueError as exc:  # a number of more than 4,300 digits; the advice is Python's
            yield LineError(number, f"not JSON we accept ({str(exc).split(':')[0]})")


def too_deep(text: str) -> bool:
    """Whether JSON ``text`` nests arrays and objects more than ``MAX_DEPTH`` levels deep.

    Checked before ``json.loads``, which recurses once per level and gives up with a
    ``RecursionError`` (in a thread with a small stack, it can crash first).  Brackets inside
    strings do not count; each character is looked at once, mostly by the regex engine (an
    unterminated string ends the scan: ``json.loads`` reports it), and a text with few
    brackets is not scanned at all.
    """
    if text.count("[") + text.count("{") <= MAX_DEPTH:
        return False
    depth = 0
    at = 0
    while (found := _STRUCTURE.search(text, at)) is not None:
        at = found.end()
        char = found.group()
        if char == '"':
            end = _STRING_REST.match(text, at)
            if end is None:
                return False
            at = end.end()
        elif char in "[{":
            depth += 1
            if depth > MAX_DEPTH:
                return True
        else:
            depth -= 1
    return False


class MentionError(ValueError):
    """A mention object that cannot be used; the message names every bad field."""


def parse_mention(data: Any, *, source: str | None = None) -> RawMention:
    """One decoded mention object, as ``brandmon ingest`` and the webhook source accept it.

    ``source`` (a push endpoint's configured name) overrides the object's own ``source``,
    which then only says where the post was written (its ``source_type``, used for reach).
    """
    if isinstance(data, dict):  # pydantic refuses a lone surrogate: replace it, keep the mention
        data = {k: storable_text(v) if isinstance(v, str) else v for k, v in data.items()}
    try:
        item = _Line.model_validate(data)
    except ValidationError as exc:
        raise MentionError(_describe(exc)) from None
    return _mention(item, source)


def _parsed(line: str) -> RawMention:
    """The mention on ``line``, parsed and checked by pydantic in one pass (in about half the time
    ``json.loads`` and ``parse_mention`` take).  A line that pass refuses goes their way, which
    names what is wrong as it always has, and keeps a mention with a lone surrogate in it."""
    try:
        item = _Line.model_validate_json(line)
    except ValidationError:
        return parse_mention(json.loads(line))
    return _mention(item)


def _mention(item: _Line, source: str | None = None) -> RawMention:
    origin = item.source or source or "jsonl"
    return RawMention(
        source=source or origin,
        source_type=origin.lower(),
        external_id=item.id or item.url or "",
        text=item.text,
        url=item.url,
        author=item.author,
        author_followers=item.followers,
        likes=item.likes,
        reposts=item.reposts,
        replies=item.replies,
        views=item.views,
        language=item.lang,
        published_at=item.published_at,
        rating=item.rating,
    )


def _describe(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        field = ".".join(str(p) for p in error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "model_type":
            message = "expected a JSON object"
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)
