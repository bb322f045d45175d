"""Meta's Graph API, as the ``facebook_page`` and ``instagram`` sources share it.

One host (``https://graph.facebook.com/<version>``, ``base_url`` in tests), one token, one way of
paging, one way of saying "slow down" and one shape of error; this module holds each once.

Auth.  The access token travels in the ``Authorization: Bearer`` header, never in the query
string, so it is in no URL that could be logged (the HTTP layer strips query strings from its
messages anyway, and names no header).  Where the app requires it ("Require App Secret"),
``app_secret_env`` names the app secret and each request carries ``appsecret_proof``, the
HMAC-SHA256 of the token under that secret.  An error message that quotes the token has it
replaced by ``[token]``.

Paging.  A listing answers ``{"data": [...], "paging": {"cursors": {"after": …}, "next": …}}``.
The next page is asked for with the request's own parameters and ``after`` (or, for the
time-paged listings such as a Page's feed, the parameters of ``paging.next``): the host and path
always stay ours, so a ``next`` link cannot send the token elsewhere.  ``Graph.listing`` reads a
newest-first listing until a page reaches what the source has seen, the listing ends,
``max_pages`` pages were read, or usage is high, and says how much may be missing when a bound
cut it short (``truncated``).

Usage.  Every response may carry ``x-app-usage`` (the app's share of its hourly limits, as
percentages of ``call_count``, ``total_cputime`` and ``total_time``), ``x-page-usage`` (the same
for the Page) and ``x-business-use-case-usage`` (per business object and kind, the same three
and ``estimated_time_to_regain_access`` in minutes).  When any percentage reaches ``HIGH_USAGE``
or Meta estimates a wait, the poll stops asking, keeps what it found and rests
(``PollResult.rest``): the estimated wait, else ``HIGH_USAGE_REST`` (the windows are rolling
hours, so usage falls as the hour passes).

Errors.  Graph refusals say why in the body, ``{"error": {"message", "type", "code",
"error_subcode", "fbtrace_id"}}``, whatever the HTTP status (mostly 400):

- ``RATE_LIMIT_CODES`` (4 app, 17 user, 32 Page, 613 custom, 80001–80014 business use case:
  80001 Pages, 80002 Instagram) are ``http_429``, resting until usage says access is regained
  (else ``HIGH_USAGE_REST``).  If some of the poll was read already, that is kept and the poll
  rests instead of failing (``Graph.gently``).
- 190 (invalid or expired token), 102 (session), 10 and 200–299 (a permission the token lacks)
  are ``auth``: the scheduler backs off up to an hour, so a dead token costs a request an hour.
- 1 and 2 (unknown error, service unavailable) are ``http_5xx``; anything else ``http_4xx``
  (e.g. 100: a wrong id or a field the version does not have).

Each message names the code, subcode, type and ``fbtrace_id``: what Meta's support asks for.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx
from pydantic import Field

from connectors.base import PollResult, SourceError, secret
from connectors.http import fetch
from connectors.payload import HighWater, Json, obj, objects, parse_time, string
from monitor.config import Duration, EnvName, HttpUrl, SourceBase
from monitor.http import parse_retry_after, redact_url
from monitor.model import Cursor, RawMention

log = logging.getLogger(__name__)

GRAPH_URL = "https://graph.facebook.com/v21.0"
MAX_BYTES = 5_000_000
DEADLINE = 120.0
HIGH_USAGE = 90.0
"""Percent of any hourly limit at which a poll stops asking."""
HIGH_USAGE_REST = 15 * 60.0
"""Seconds to rest when usage is high and Meta gives no estimate: a quarter of its rolling hour."""
USAGE_HEADERS = ("x-app-usage", "x-page-usage", "x-business-use-case-usage")
USAGE_KEYS = ("call_count", "total_cputime", "total_time")
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
TOKEN_CODES = frozenset({102, 190})
PERMISSION_CODES = frozenset({10, *range(200, 300)})
SERVER_CODES = frozenset({1, 2})
PAGING_KEYS = frozenset({"after", "until", "since", "__paging_token", "__previous"})
"""Query parameters of a ``paging.next`` link that say where the next page starts."""
MESSAGE_CHARS = 300

T = TypeVar("T")


class GraphSource(SourceBase):
    """What a Graph API source has besides its own keys: its token, the API's address and how
    far one poll may page."""

    token_env: EnvName
    app_secret_env: EnvName | None = None
    """The app secret, for ``appsecret_proof``: set it when the app requires it."""
    base_url: HttpUrl = GRAPH_URL
    """The Graph API with its version (Meta supports each version for about two years)."""
    interval: Duration = timedelta(minutes=10)
    max_pages: int = Field(default=5, ge=1, le=50)
    """Pages one listing may read in one poll to get back to what the last poll saw."""


@dataclass(frozen=True, slots=True)
class Listing:
    """The entries a ``Graph.listing`` read, newest first, each once, and whether a bound cut
    it short: ``truncated`` is at least how many entries may be missing."""

    items: list[Json]
    truncated: int | None = None


def usage_rest(headers: Mapping[str, str]) -> float | None:
    """Seconds to rest before asking the Graph API again, from its usage headers; None while
    every limit is below ``HIGH_USAGE`` and no wait is estimated.  Unreadable headers are
    ignored (they are advice, not the answer)."""
    rest: float | None = None
    for name in USAGE_HEADERS:
        try:
            usage = json.loads(headers.get(name) or "null")
        except ValueError:
            continue
        for entry in _usage_entries(usage):
            wait = _number(entry.get("estimated_time_to_regain_access"))
            if wait is not None and wait > 0:
                rest = max(rest or 0.0, wait * 60.0)  # minutes
            elif any((_number(entry.get(key)) or 0.0) >= HIGH_USAGE for key in USAGE_KEYS):
                rest = max(rest or 0.0, HIGH_USAGE_REST)
    return rest


def _usage_entries(usage: Any) -> list[Json]:
    """The usage objects of a header: the object itself (app, Page), or every object listed
    under each business id (business use case)."""
    if not isinstance(usage, dict):
        return []
    if any(key in usage for key in USAGE_KEYS):
        return [usage]
    return [entry for value in usage.values() if objects(value) for entry in value]


def _number(value: Any) -> float | None:
    """``value`` if it is a number (not a boolean), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def graph_error(
    status: int, headers: Mapping[str, str], body: bytes, where: str, token: str
) -> SourceError:
    """The ``SourceError`` for a refused request (HTTP ``status``), told by the Graph error in
    ``body`` when there is one (see the module's docstring)."""
    try:
        refusal = json.loads(body)
    except ValueError:
        refusal = None
    error = obj(refusal, "error") if isinstance(refusal, dict) else {}
    code = error.get("code")
    retry_after = parse_retry_after(headers.get("Retry-After")) or usage_rest(headers)
    if _number(code) is None:
        kind = "http_429" if status == 429 else "http_5xx" if status >= 500 else "http_4xx"
        if kind == "http_429" and retry_after is None:
            retry_after = HIGH_USAGE_REST
        return SourceError(kind, f"HTTP {status} from {where}", retry_after=retry_after)
    message = " ".join((string(error, "message") or "no message").replace(token, "[token]").split())
    if len(message) > MESSAGE_CHARS:
        message = message[:MESSAGE_CHARS] + "…"
    details = [f"code {code}"]
    if _number(subcode := error.get("error_subcode")) is not None:
        details.append(f"subcode {subcode}")
    for key in ("type", "fbtrace_id"):
        if value := string(error, key):
            details.append(f"{key} {value}")
    said = f"HTTP {status} from {where}: {message} ({', '.join(details)})"
    if code in RATE_LIMIT_CODES or status == 429:
        return SourceError(
            "http_429",
            f"{said}: the Graph API rate limit is reached",
            retry_after=retry_after or HIGH_USAGE_REST,
        )
    if code in TOKEN_CODES:
        return SourceError("auth", f"{said}: the access token is invalid or has expired")
    if code in PERMISSION_CODES:
        return SourceError("auth", f"{said}: the access token lacks a permission this needs")
    kind = "http_5xx" if code in SERVER_CODES or status >= 500 else "http_4xx"
    return SourceError(kind, said, retry_after=retry_after if kind == "http_5xx" else None)


def created(item: Json, key: str = "created_time") -> float | None:
    """An entry's creation time (``created_time`` on Facebook, ``timestamp`` on Instagram) as
    a Unix time, or None."""
    moment = parse_time(string(item, key))
    return None if moment is None else moment.timestamp()


class Graph:
    """One poll's conversation with the Graph API: the token, the usage seen so far, and
    whether the poll should stop asking (``rest``)."""

    def __init__(self, client: httpx.AsyncClient, config: GraphSource) -> None:
        token = secret(config.token_env)
        self.client = client
        self.base_url = config.base_url.rstrip("/")
        self.source = config.name
        self._token = token
        self._proof: dict[str, str] = {}
        if config.app_secret_env:
            app_secret = secret(config.app_secret_env)
            proof = hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()
            self._proof = {"appsecret_proof": proof}
        self.rest: float | None = None
        """Seconds to rest: set once usage is high or a rate limit was hit; then no more
        requests are made this poll."""
        self.answered = 0
        """Requests that were answered (for ``gently``)."""

    async def get(self, path: str, params: Mapping[str, str]) -> Json:
        """GET ``path`` (below the versioned base URL) and return its JSON object, or raise
        ``SourceError``.  Usage headers are read on every answer, refusals too."""
        url = f"{self.base_url}/{path.lstrip('/')}"
        try:
            answer = await fetch(
                self.client,
                url,
                params={**params, **self._proof},
                headers={"Authorization": f"Bearer {self._token}"},
                max_bytes=MAX_BYTES,
                deadline=DEADLINE,
            )
            status, headers, body = answer.status, answer.headers, answer.content
        except SourceError as refused:  # the Graph API says why in the body and headers
            if refused.status is None:
                raise
            status, headers, body = refused.status, refused.headers, refused.body
        if (rest := usage_rest(headers)) is not None:
            self.rest = max(self.rest or 0.0, rest)
        where = redact_url(url)
        if status >= 300:
            raise graph_error(status, headers, body, where, self._token)
        self.answered += 1
        try:
            data = json.loads(body)
        except ValueError:
            raise SourceError("malformed", f"{where} sent a body that is not JSON") from None
        if not isinstance(data, dict):
            raise SourceError("malformed", f"{where} did not return an object")
        return data

    async def remembered(self, state: Json, key: str, node: str, field: str) -> str | None:
        """``node``'s ``field`` (a Page's name, an account's username), asked once and kept in
        ``state[key]`` (``node`` itself when the answer has none); None while it cannot be
        asked."""
        if not isinstance(state.get(key), str):
            about = await self.gently(lambda: self.get(node, {"fields": field}))
            if about is not None:
                state[key] = string(about, field) or node
        value = state.get(key)
        return value if isinstance(value, str) else None

    def result(self, mentions: list[RawMention], cut: list[int], state: Json) -> PollResult:
        """A poll's result: ``mentions``, ``state`` as its cursor, the posts the listings
        ``cut`` short may have missed, and the rest usage asked for."""
        return PollResult(
            mentions=mentions,
            cursor=Cursor(cursor=dump_state(state)),
            truncated=sum(cut) if cut else None,
            rest=self.rest,
        )

    async def gently(self, read: Callable[[], Awaitable[T]]) -> T | None:
        """``read()``, unless the poll is resting already (None).  A rate limit it hits makes
        the poll rest, keeping what earlier reads found (None); only when nothing was answered
        yet is it raised, so the scheduler backs off."""
        if self.rest is not None:
            return None
        try:
            return await read()
        except SourceError as error:
            if error.kind != "http_429" or not self.answered:
                raise
            log.warning("poll cut short source=%s reason=rate_limit: %s", self.source, error)
            self.rest = max(self.rest or 0.0, error.retry_after or HIGH_USAGE_REST)
            return None

    async def listing(
        self,
        path: str,
        params: Mapping[str, str],
        *,
        is_new: Callable[[Json], bool],
        resuming: bool,
        max_pages: int,
        identify: Callable[[Json], str | None] = lambda item: string(item, "id"),
    ) -> Listing:
        """Read a newest-first listing page by page until a page holds an entry that is not
        new, the listing ends, ``max_pages`` pages were read or usage is high.  A first poll
        (not ``resuming``) reads one page.  Every entry read is returned once, by its
        ``identify`` (its ``id``; entries without one are dropped): the caller picks the new
        ones, since a post seen before may have new comments."""
        found: dict[str, Json] = {}
        url = f"{self.base_url}/{path.lstrip('/')}"
        query = dict(params)
        pages = 0
        while True:
            body = await self.get(path, query)
            data = body.get("data", [])
            if not objects(data):
                raise SourceError("malformed", f"{redact_url(url)} did not return a list of data")
            pages += 1
            entries = [(item_id, item) for item in data if (item_id := identify(item))]
            for item_id, item in entries:
                found.setdefault(item_id, item)
            reached = not all(is_new(item) for _, item in entries)
            following = next_query(body, params)
            if reached or following is None or not resuming:
                return Listing(list(found.values()))
            if self.rest is not None or pages >= max_pages:
                break
            query = following
        missing = _count(params.get("limit")) or len(data) or 1
        log.warning(
            "poll cut short source=%s listing=%s pages=%d reason=%s missing=%d",
            self.source,
            path,
            pages,
            "usage" if self.rest is not None else "max_pages",
            missing,
        )
        return Listing(list(found.values()), truncated=missing)


def next_query(body: Json, params: Mapping[str, str]) -> dict[str, str] | None:
    """The query for the page after ``body``: ``params`` with ``paging.cursors.after`` where
    ``paging.next`` says there is one, else with the position parameters of ``paging.next``
    (``until``, ``__paging_token``…); None at the end of the listing."""
    paging = obj(body, "paging")
    link = string(paging, "next")
    if link is None:
        return None
    after = string(obj(paging, "cursors"), "after")
    if after:
        return {**params, "after": after}
    try:
        position = {
            key: value for key, value in parse_qsl(urlsplit(link).query) if key in PAGING_KEYS
        }
    except ValueError:
        return None
    return {**params, **position} if position else None


def _count(value: str | None) -> int | None:
    return int(value) if value and value.isdigit() else None


def load_state(cursor: str | None) -> Json:
    """A Graph source's cursor: a JSON object of its listings' marks (and what it caches); an
    unreadable one starts afresh."""
    try:
        state = json.loads(cursor) if cursor else {}
    except ValueError:
        return {}
    return state if isinstance(state, dict) else {}


def load_mark(value: Any) -> HighWater:
    """A listing's ``HighWater`` as ``dump_mark`` stored it; anything else starts afresh."""
    if not isinstance(value, dict):
        return HighWater()
    try:
        return HighWater(float(value.get("newest", 0.0)), frozenset(map(str, value.get("ids", []))))
    except (TypeError, ValueError):
        return HighWater()


def dump_mark(mark: HighWater) -> Json:
    return {"newest": mark.newest, "ids": sorted(mark.ids)}


def dump_state(state: Json) -> str:
    return json.dumps(state, sort_keys=True, separators=(",", ":"))


def comment_url(post_url: str, comment_id: str) -> str:
    """A comment's link where the API gives it none: its post's, with ``comment_id``.  It opens
    the post to reply under, and tells the post's comments apart (storage keeps one mention
    per brand and link)."""
    separator = "&" if "?" in post_url else "?"
    return f"{post_url}{separator}{urlencode({'comment_id': comment_id})}"
