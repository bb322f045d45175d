"""The source seam: a connector polled once through the real HTTP client, which the test points
at a loopback server serving the API's recorded, real-shaped answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from connectors.base import Connector, PollResult, SourceError
from connectors.http import make_client
from monitor.model import Cursor


def poll_once(
    connector: Connector, cursor: Cursor | None = None, *, timeout: float = 5.0
) -> PollResult:
    """What one poll of ``connector`` returns, given the state ``cursor`` (none: a first poll)."""

    async def run() -> PollResult:
        async with make_client(timeout=timeout) as client:
            return await connector.poll(client, cursor or Cursor())

    return asyncio.run(run())


def refused(poll: Callable[[], object], *secrets: str) -> SourceError:
    """The ``SourceError`` that ``poll()`` raises, which must not show any of ``secrets``."""
    with pytest.raises(SourceError) as caught:
        poll()
    for secret in secrets:
        assert secret not in str(caught.value)
    return caught.value
