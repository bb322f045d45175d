"""What every sink implements, and the alert it is handed."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from monitor.alert import Payload, TestPayload
from monitor.model import utcnow

P = TypeVar("P", bound=Payload)


@dataclass(frozen=True, slots=True)
class Alert:
    """One alert as stored in the outbox: ``payload`` is what the watcher (or the outbox, for
    a notice) wrote, typed by ``kind`` (``monitor.alert``)."""

    key: str
    brand: str
    kind: str  # "page", "resolved", "test" or "undeliverable" (a notice from the outbox)
    payload: Payload
    chart: bytes | None = None
    """The brand's last 24 hours as a PNG, drawn before delivery for a sink that asked for it
    (``wants_chart``); a sink never draws it itself."""

    def read(self, payload: type[P]) -> P:
        """The payload, which a sink knows is a ``payload`` from the alert's kind."""
        if not isinstance(self.payload, payload):
            raise TypeError(f"a {self.kind} alert carries no {payload.__name__}")
        return self.payload


Chart = Callable[[str], bytes]
"""Draws a brand's last 24 hours as a PNG (the daemon hands one to the outbox's sender)."""


class SinkError(Exception):
    """The sink did not take the alert; it stays in the outbox and is retried.

    ``retry_after`` (seconds) is set when the far side said when to come back (HTTP 429)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PermanentSinkError(SinkError):
    """The sink refused the alert for a reason that retrying will not fix (a message it will
    never accept, a channel it cannot post to, a revoked token).  The outbox stops retrying that
    row (it stays in the database as ``failed``) and moves on to the next one."""


class Sink(Protocol):
    """A place alerts go.  A sink that shows pictures also has ``wants_chart(alert) -> bool``:
    the outbox's sender then draws the brand's chart before handing it the alert."""

    name: str

    def send(self, alert: Alert) -> None:
        """Deliver ``alert`` or raise ``SinkError`` (``PermanentSinkError`` when retrying cannot
        help); returning means the sink accepted it."""
        ...


def test_alert(brand: str) -> Alert:
    """A clearly marked alert for ``brandmon test-alert``: it proves a sink works end to end."""
    return Alert(
        key=f"test:{brand}:{utcnow().isoformat()}",
        brand=brand,
        kind="test",
        payload=TestPayload(
            brand=brand,
            message="this is a test of brandmon's alert delivery; no action is needed",
            at=utcnow().isoformat(),
        ),
    )
