"""Mentions pushed as JSON lines (``brandmon ingest``), one object per line.

Fields: ``id``, ``source``, ``text``, ``author``, ``followers``, ``likes``, ``reposts``,
``replies``, ``views``, ``url``, ``published_at`` (ISO 8601 or epoch seconds), ``lang``.
``text`` is required, and ``id`` unless ``url`` is given.  Other fields are ignored, so exports
from other tools can be fed as they are.  A bad line is reported with its number and skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from monitor.model import RawMention


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
    url: str | None = None
    published_at: datetime | None = None
    lang: str | None = None

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


def read_jsonl(lines: Iterable[str]) -> Iterator[RawMention | LineError]:
    """Yield a ``RawMention`` for each good line and a ``LineError`` for each bad one."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            yield parse_mention(json.loads(line))
        except json.JSONDecodeError as exc:
            yield LineError(number, f"not JSON ({exc.msg} at column {exc.colno})")
        except MentionError as exc:
            yield LineError(number, str(exc))


class MentionError(ValueError):
    """A mention object that cannot be used; the message names every bad field."""


def parse_mention(data: Any, *, source: str | None = None) -> RawMention:
    """One decoded mention object, as ``brandmon ingest`` and the webhook source accept it.

    ``source`` (a push endpoint's configured name) overrides the object's own ``source``,
    which then only says where the post was written (its ``source_type``, used for reach).
    """
    try:
        item = _Line.model_validate(data)
    except ValidationError as exc:
        raise MentionError(_describe(exc)) from None
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
