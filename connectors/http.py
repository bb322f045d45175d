"""The one HTTP layer every connector uses.

``make_client`` builds the shared ``httpx.AsyncClient`` (timeouts, redirects, User-Agent,
connection limits) and ``fetch`` performs one GET with a hard cap on the body size, turning every
failure into a ``SourceError`` with a stable ``kind``.  Error messages name the URL without its
query string, fragment or user info (``monitor.http.redact_url``), because those are where API
keys and passwords live; request headers (``Authorization``) are never mentioned at all.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from ipaddress import IPv4Network, IPv6Network, ip_address
from typing import Any

import httpx

from connectors.base import REFUSAL_BYTES, SourceError
from monitor.http import USER_AGENT, parse_retry_after, redact_url


@dataclass(frozen=True, slots=True)
class Fetched:
    """A successful (2xx) or not-modified (304) response with its whole body.

    ``url`` is the final URL after redirects; like the request URL it may carry secrets in its
    query string, so pass it through ``redact_url`` before logging it.
    """

    status: int
    headers: httpx.Headers
    content: bytes
    url: str


def make_client(
    *,
    timeout: float = 20.0,
    max_redirects: int = 5,
    block_private: bool = False,
    allow_networks: Sequence[IPv4Network | IPv6Network] = (),
    max_connections: int = 20,
) -> httpx.AsyncClient:
    """The client for all polling.  ``timeout`` bounds each connect, read, write and pool wait.

    With ``block_private`` every request — redirects included — to a host that resolves to a
    loopback, private, link-local or otherwise non-public address is refused (``blocked``)
    unless the address is in ``allow_networks``: a feed URL must not become a way into the
    internal network.
    """
    hooks = {"request": [_address_guard(allow_networks)]} if block_private else {}
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        follow_redirects=True,
        max_redirects=max_redirects,
        headers={"User-Agent": USER_AGENT},
        limits=httpx.Limits(
            max_connections=max_connections, max_keepalive_connections=max_connections
        ),
        event_hooks=hooks,
    )


def _address_guard(
    allowed: Sequence[IPv4Network | IPv6Network],
) -> Callable[[httpx.Request], Awaitable[None]]:
    async def check(request: httpx.Request) -> None:
        host = request.url.host
        where = redact_url(str(request.url))
        try:
            addresses = [ip_address(host)]  # an IP literal needs no lookup
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, request.url.port or 443, type=socket.SOCK_STREAM
                )
            except socket.gaierror as exc:
                raise SourceError("connect", f"cannot resolve {where}: {exc.strerror}") from None
            addresses = [ip_address(sockaddr[0]) for *_, sockaddr in infos]
        for address in addresses:
            if not address.is_global and not any(address in net for net in allowed):
                raise SourceError(
                    "blocked",
                    f"{where} resolves to {address}, a non-public address; "
                    "allow it with [network] allow_networks",
                )

    return check


async def fetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int,
    deadline: float = 120.0,
) -> Fetched:
    """GET ``url`` and return the response, or raise ``SourceError``.

    The body is streamed and abandoned as soon as it exceeds ``max_bytes`` (decoded), so an
    endless or huge response cannot exhaust memory.  The client's timeouts bound each network
    operation, not the transfer, so ``deadline`` (seconds) bounds the whole exchange: a server
    that drips one byte at a time cannot hold a poll forever.
    """
    where = redact_url(url)
    try:
        async with asyncio.timeout(deadline):
            return await _get(client, url, where, params, headers, max_bytes)
    except TimeoutError:
        raise SourceError("timeout", f"{where} took longer than {deadline:g}s") from None
    except httpx.TimeoutException as exc:
        raise SourceError("timeout", f"{where} timed out ({type(exc).__name__})") from None
    except httpx.TooManyRedirects:
        raise SourceError("redirect", f"{where} redirected too many times") from None
    except httpx.UnsupportedProtocol:
        # The configured URL is validated as http(s), so only a redirect can get here.
        raise SourceError("redirect", f"{where} redirected to a non-HTTP URL") from None
    except httpx.DecodingError:
        raise SourceError("malformed", f"{where} sent a body that cannot be decoded") from None
    except httpx.TransportError as exc:
        raise SourceError("connect", f"cannot fetch {where}: {_reason(exc)}") from None


async def _get(
    client: httpx.AsyncClient,
    url: str,
    where: str,
    params: Mapping[str, str] | None,
    headers: Mapping[str, str] | None,
    max_bytes: int,
) -> Fetched:
    async with client.stream("GET", url, params=params, headers=headers) as response:
        refusal = b""
        if response.status_code >= 400:
            async for chunk in response.aiter_bytes():
                refusal += chunk
                if len(refusal) >= REFUSAL_BYTES:
                    break
        _check_status(response, where, refusal[:REFUSAL_BYTES])
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise _too_large(where, max_bytes)
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > max_bytes:
                raise _too_large(where, max_bytes)
        return Fetched(response.status_code, response.headers, bytes(body), str(response.url))


def _check_status(response: httpx.Response, where: str, refusal: bytes = b"") -> None:
    """Raise ``SourceError`` for an answer that is not a success (``refusal``: the first bytes
    of its body, kept on the error for the connector to read)."""
    status = response.status_code
    if status < 300 or status == 304:
        return
    final = redact_url(str(response.url))
    message = f"HTTP {status} from {where}"
    if final != where:
        message += f" (redirected to {final})"
    if status < 400:
        raise SourceError("redirect", f"{message} without a usable Location")
    retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if retry_after is None and status == 429:
        retry_after = until_reset(response.headers)
    kind = "http_429" if status == 429 else "http_5xx" if status >= 500 else "http_4xx"
    raise SourceError(
        kind,
        message,
        retry_after=retry_after,
        status=status,
        headers=response.headers,
        body=refusal,
    )


def _too_large(where: str, max_bytes: int) -> SourceError:
    return SourceError("too_large", f"{where} sent more than {max_bytes} bytes")


def _reason(exc: httpx.TransportError) -> str:
    # Socket-level errors ("Connection refused") are safe and useful; protocol errors can quote
    # a Location header, which may carry a secret, so only their type is shown.
    if isinstance(exc, httpx.NetworkError) and str(exc):
        return str(exc)
    return type(exc).__name__


RESET_HEADERS = ("x-rate-limit-reset", "x-ratelimit-reset", "ratelimit-reset")
"""Where each service says when its rate-limit window resets: X ``x-rate-limit-reset`` (Unix
time), Reddit ``x-ratelimit-reset`` (seconds from now), Mastodon ``X-RateLimit-Reset`` (an ISO
time), Bluesky ``ratelimit-reset`` (Unix time)."""
EPOCH_FROM = 1_000_000_000  # a reset value this large is a Unix time, a smaller one a delay


def until_reset(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds until the service's rate-limit window resets, from whichever of its headers the
    response carries (one second of margin), or None."""
    now = now or datetime.now(UTC)
    for name in RESET_HEADERS:
        value = (headers.get(name) or "").strip()
        if not value:
            continue
        try:
            number = float(value)
        except ValueError:
            try:
                when = datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            when = when if when.tzinfo else when.replace(tzinfo=UTC)
            return max(0.0, (when - now).total_seconds()) + 1
        if number >= EPOCH_FROM:
            return max(0.0, number - now.timestamp()) + 1
        return max(0.0, number) + 1
    return None


@dataclass(frozen=True, slots=True)
class JsonPage:
    """A decoded JSON response and its headers (rate-limit state, ``Link`` for paging)."""

    body: Any
    headers: httpx.Headers


async def fetch_json(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = 5_000_000,
) -> Any:
    """GET a JSON API: ``fetch`` plus decoding; a body that is not JSON is ``malformed``."""
    page = await fetch_json_page(client, url, params=params, headers=headers, max_bytes=max_bytes)
    return page.body


async def fetch_json_page(
    client: httpx.AsyncClient,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    max_bytes: int = 5_000_000,
) -> JsonPage:
    """``fetch_json`` keeping the response's headers."""
    fetched = await fetch(client, url, params=params, headers=headers, max_bytes=max_bytes)
    try:
        return JsonPage(json.loads(fetched.content), fetched.headers)
    except ValueError:
        kind = fetched.headers.get("Content-Type", "no content type").split(";")[0]
        raise SourceError(
            "malformed", f"{redact_url(url)} sent a body that is not JSON ({kind})"
        ) from None


REMAINING_HEADERS = ("x-rate-limit-remaining", "x-ratelimit-remaining", "ratelimit-remaining")
LOW_REMAINING = 1.0  # requests left in the window at which a source rests until its reset


def slow_down(headers: httpx.Headers, now: datetime | None = None) -> float | None:
    """Seconds to rest before the next request when the rate-limit window is (almost) spent,
    so the limit is never hit; None while requests remain."""
    for name in REMAINING_HEADERS:
        try:
            remaining = float(headers.get(name) or "")
        except ValueError:
            continue
        return until_reset(headers, now) if remaining <= LOW_REMAINING else None
    return None
