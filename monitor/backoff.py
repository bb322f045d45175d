"""Exponential back-off with jitter, shared by the daemon's sources and the alert outbox."""

from __future__ import annotations

import random
from datetime import timedelta


def backoff(first: timedelta, attempt: int, longest: timedelta) -> timedelta:
    """How long to wait after the ``attempt``-th consecutive failure: ``first``, doubled for
    each failure after the first, at most ``longest``; then less up to a fifth at random, so
    that what failed together does not retry together."""
    seconds = first.total_seconds() * 2 ** min(attempt - 1, 16)
    capped = min(seconds, longest.total_seconds())
    return timedelta(seconds=capped * random.uniform(0.8, 1.0))
