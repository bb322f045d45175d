"""The HTTP pieces the connectors and the alert sinks share: brandmon's ``User-Agent``, reading
``Retry-After``, and ``redact_url`` for naming a URL in logs and errors without its secrets.
The connectors' client and fetching are in ``connectors.http``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import lru_cache

import httpx

from monitor import __version__

USER_AGENT = f"brandmon/{__version__} (+https://github.com/brandmon/brandmon)"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP-date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


@lru_cache(maxsize=4096)  # each poll names its source's URL, the same at every cycle
def redact_url(url: str) -> str:
    """``url`` without user info, query string and fragment: safe to log or show."""
    try:
        return str(httpx.URL(url).copy_with(userinfo=b"", query=None, fragment=None))
    except httpx.InvalidURL:
        return "<invalid URL>"
