"""The one small interface every source implements.

A connector is built from its ``[[sources]]`` entry, is handed the state it returned last time
(cursor and HTTP validators, persisted by storage), and returns the posts it found plus the new
state.  It never stores, matches or scores: the pipeline does that for every source alike.
A failure is raised as ``SourceError`` so the scheduler can log it, count it and back off
without stopping the other sources.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import httpx

from monitor.model import Cursor, RawMention


@dataclass(slots=True)
class PollResult:
    mentions: list[RawMention] = field(default_factory=list)
    cursor: Cursor = field(default_factory=Cursor)
    not_modified: bool = False
    truncated: int | None = None
    """Set when ``max_pages`` cut the poll short before the last stored post was reached: how
    many posts may be missing (at least), so the scheduler warns and polls again sooner."""
    rest: float | None = None
    """Seconds the source asked to be left alone (its rate-limit window is spent)."""


REFUSAL_BYTES = 64_000
"""How much of a refusal's body (an HTTP 4xx or 5xx) is kept for the connector to read."""


class SourceError(Exception):
    """A poll failed.  ``kind`` is a short machine-readable reason used in logs and metrics:
    ``timeout``, ``connect``, ``http_429``, ``http_5xx``, ``http_4xx``, ``too_large``,
    ``malformed``, ``redirect``, ``blocked`` (a non-public address) or ``auth``.
    ``retry_after`` (seconds) is set when the server said when to come back.  An HTTP refusal
    keeps its ``status``, ``headers`` and the first ``REFUSAL_BYTES`` of its body, which some
    APIs say why in (a ``retry_after`` in Telegram's JSON, an ``error_code`` in Weibo's, a
    ``reason`` in Google's, usage in Meta's headers); the body may quote the request, so it is
    for reading, never for logging."""

    def __init__(
        self,
        kind: str,
        message: str,
        *,
        retry_after: float | None = None,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        body: bytes = b"",
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.retry_after = retry_after
        self.status = status
        self.headers: Mapping[str, str] = headers or {}
        self.body = body

    def __reduce__(self) -> tuple[Any, ...]:
        # raised in a worker process (a feed's parse), it crosses back pickled, attributes too
        return (type(self), (self.kind, str(self)), self.__dict__)


def secret(variable: str | None) -> str:
    """The value of the environment variable a source's ``*_env`` setting names (secrets never
    live in the config file); an ``auth`` error when it is unset or empty."""
    value = os.environ.get(variable or "")
    if not value:
        raise SourceError("auth", f"environment variable {variable} is not set")
    return value


class Connector(Protocol):
    """A source of mentions.  ``name`` is the unique source name from the config."""

    name: str
    type: str

    async def poll(self, client: httpx.AsyncClient, cursor: Cursor) -> PollResult: ...
