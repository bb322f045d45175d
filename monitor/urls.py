"""URL clean-up for de-duplication.

The same article reaches us through Google Alerts, Google News, newsletters and social posts, each
time wrapped in a redirect or decorated with tracking parameters.  ``canonical_url`` reduces those
variants to one string so storage can recognise the article; ``unwrap_redirect`` only removes the
Google redirect, for showing a link people can click.  Both leave links longer than
``MAX_URL_CHARS`` alone.
"""

from __future__ import annotations

import re
from urllib.parse import SplitResult, parse_qsl, urlencode, urlsplit, urlunsplit

_GOOGLE_HOST = re.compile(r"^(?:www\.)?google(?:\.[a-z]{2,3}){1,2}$")
_TRACKING_PREFIXES = ("utm_",)
_TRACKING_PARAMS = frozenset(
    {
        "fbclid",
        "gclid",
        "dclid",
        "gbraid",
        "wbraid",
        "msclkid",
        "yclid",
        "twclid",
        "mc_cid",
        "mc_eid",
        "igshid",
        "ref_src",
        "ref_url",
        "_hsenc",
        "_hsmi",
        "mkt_tok",
        "oly_anon_id",
        "oly_enc_id",
        "vero_id",
    }
)
_DEFAULT_PORTS = {"http": 80, "https": 443}
MAX_URL_CHARS = 8_192
"""Longer links are neither unwrapped nor canonicalised: web servers refuse request lines past
about 8 KB, so such a link leads nowhere, and parsing one costs time linear in its length
(a megabyte: 0.4 s) for nothing."""
# A URL already in canonical form: lowercase scheme and host, no user info, port, query or
# fragment, a path not ending in "/", nothing to strip.  Most post links look like this.
_CANONICAL = re.compile(r"https?://[a-z0-9-]+(?:\.[a-z0-9-]+)*(?:/|(?:/[^?#/\s\x00-\x20\x7f]+)+)")


def unwrap_redirect(url: str) -> str:
    """The target of a Google redirect link (``https://www.google.com/url?url=...`` or ``?q=``),
    as found in Google Alerts feeds; any other URL (or one longer than ``MAX_URL_CHARS``) is
    returned unchanged."""
    if len(url) > MAX_URL_CHARS:
        return url
    try:
        return _redirect_target(urlsplit(url.strip())) or url
    except ValueError:  # e.g. a broken IPv6 literal
        return url


def _redirect_target(parts: SplitResult) -> str | None:
    """The http(s) URL a Google redirect points to, if ``parts`` is one."""
    host = parts.hostname or ""
    if "google" not in host or parts.path != "/url" or not _GOOGLE_HOST.match(host):
        return None
    query = dict(parse_qsl(parts.query))
    target = query.get("url") or query.get("q") or ""
    try:
        return target if urlsplit(target).scheme.lower() in _DEFAULT_PORTS else None
    except ValueError:  # a broken target: the redirect link is all there is
        return None


def canonical_url(url: str | None) -> str | None:
    """One form for all variants of an http(s) URL, or None if ``url`` is not one (or is longer
    than ``MAX_URL_CHARS``).

    Unwraps Google redirects, lowercases scheme and host, drops user info, default ports, the
    fragment and tracking parameters, sorts the remaining parameters and removes a trailing slash
    from the path.
    """
    if not url or len(url) > MAX_URL_CHARS or not url.strip():
        return None
    if _CANONICAL.fullmatch(url):
        return url
    try:
        parts = urlsplit(url.strip())
        target = _redirect_target(parts)
        if target is not None:
            parts = urlsplit(target)
        port = parts.port
    except ValueError:  # a broken IPv6 literal or a non-numeric port
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").rstrip(".")
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    path = parts.path.rstrip("/") or "/"
    query = ""
    if parts.query:
        params = [
            (key, value)
            for key, value in parse_qsl(parts.query, keep_blank_values=True)
            if not _is_tracking(key)
        ]
        # Sort by name only: the order of repeated parameters can matter (a=1&a=2).
        query = urlencode(sorted(params, key=lambda item: item[0]))
    return urlunsplit((scheme, netloc, path, query, ""))


def _is_tracking(key: str) -> bool:
    key = key.lower()
    return key in _TRACKING_PARAMS or key.startswith(_TRACKING_PREFIXES)
