"""HMAC signatures for the JSON brandmon exchanges over HTTP (push ingest and alert webhooks).

The signed material is ``f"{timestamp}."`` followed by the exact body bytes, and the header
value is ``sha256=<hex digest>``, sent with the Unix ``timestamp`` in its own header.  Signing
the timestamp lets a receiver refuse an old request replayed by someone who captured it.
"""

from __future__ import annotations

import hashlib
import hmac
import time

SIGNATURE_HEADER = "X-Brandmon-Signature"
TIMESTAMP_HEADER = "X-Brandmon-Timestamp"
MAX_SKEW = 300.0
"""Seconds a signed request may be older (or newer) than the receiver's clock."""


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Brandmon-Signature`` value for ``body`` sent at ``timestamp``."""
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(
    secret: str,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``signature`` is ``body``'s, made with ``secret`` at a ``timestamp`` within
    ``MAX_SKEW`` of ``now`` (the current time when None).  Compared in constant time."""
    if not signature or not fresh(timestamp, now):
        return False
    return hmac.compare_digest(sign(secret, timestamp or "", body), signature)


def fresh(timestamp: str | None, now: float | None = None) -> bool:
    """Whether the Unix ``timestamp`` is within ``MAX_SKEW`` of ``now`` (default: the clock)."""
    try:
        age = abs((time.time() if now is None else now) - float(timestamp or ""))
    except ValueError:
        return False
    return age <= MAX_SKEW
