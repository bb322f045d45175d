"""What an alert says: the typed contract between the watcher that decides and the sinks.

The watcher builds one of these payloads, ``monitor.storage.enqueue`` stores its ``to_json()``
in the outbox, and the outbox hands ``payload_from_json(kind, ...)`` back to the sinks, which
read fields, not string keys.  The JSON shape is the one the outbox has always stored (and the
webhook sink POSTs), so rows queued by older versions still read: fields that older versions
did not write are optional.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo


@dataclass(frozen=True, slots=True)
class MentionBrief:
    """One mention as an alert shows it."""

    source: str
    author: str | None
    reach: float | None
    text: str
    url: str | None
    id: int | None = None
    followers: int | None = None
    category: str | None = None
    priority: str | None = None
    published_at: str | None = None
    also: tuple[str, ...] = ()
    """Links to the same post seen elsewhere (near-duplicate text on other sources)."""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "author": self.author,
            "followers": self.followers,
            "reach": self.reach,
            "text": self.text,
            "url": self.url,
            "category": self.category,
            "priority": self.priority,
            "published_at": self.published_at,
            **({"also": list(self.also)} if self.also else {}),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MentionBrief:
        return cls(
            source=data["source"],
            author=data.get("author"),
            reach=data.get("reach"),
            text=data["text"],
            url=data.get("url"),
            id=data.get("id"),
            followers=data.get("followers"),
            category=data.get("category"),
            priority=data.get("priority"),
            published_at=data.get("published_at"),
            also=tuple(data.get("also") or ()),
        )


def _briefs(items: Any) -> tuple[MentionBrief, ...]:
    return tuple(MentionBrief.from_json(m) for m in items or ())


@dataclass(frozen=True, slots=True)
class PagePayload:
    """A page (an incident entered a level) or a resolution (kinds ``page``, ``resolved``).

    ``negative`` is the negative mentions of the window that fired, ``previous_window`` those
    of the window before it; the fields with a default may be missing from payloads queued by
    older versions (``why``, for one)."""

    brand: str
    incident_id: int | None
    level: str
    at: str
    started_at: str
    peak_level: str
    peak_at: str
    score: float
    negative: float
    expected: float | None
    window_minutes: int
    thresholds: Mapping[str, float]
    top_mentions: tuple[MentionBrief, ...] = ()
    first_mentions: tuple[MentionBrief, ...] = ()
    event: str | None = None
    why: str | None = None
    signal: str | None = None
    share: float | None = None
    negative_reach: float | None = None
    previous_window: float | None = None
    total_negative: int | None = None
    """A resolution: the negative mentions from the incident's start to its end."""
    total_mentions: int | None = None
    """A resolution: all the mentions from the incident's start to its end."""

    def to_json(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "incident_id": self.incident_id,
            "event": self.event,
            "level": self.level,
            "at": self.at,
            "started_at": self.started_at,
            "peak_level": self.peak_level,
            "peak_at": self.peak_at,
            "score": self.score,
            "why": self.why,
            "signal": self.signal,
            "negative": self.negative,
            "expected": self.expected,
            "window_minutes": self.window_minutes,
            "previous_window": self.previous_window,
            "share": self.share,
            "negative_reach": self.negative_reach,
            "thresholds": dict(self.thresholds),
            "top_mentions": [m.to_json() for m in self.top_mentions],
            "first_mentions": [m.to_json() for m in self.first_mentions],
            **_given(total_negative=self.total_negative, total_mentions=self.total_mentions),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> PagePayload:
        return cls(
            brand=data["brand"],
            incident_id=data.get("incident_id"),
            level=data["level"],
            at=data["at"],
            started_at=data["started_at"],
            peak_level=data["peak_level"],
            peak_at=data["peak_at"],
            score=data["score"],
            negative=data["negative"],
            expected=data.get("expected"),
            window_minutes=data["window_minutes"],
            thresholds=dict(data.get("thresholds") or {}),
            top_mentions=_briefs(data.get("top_mentions")),
            first_mentions=_briefs(data.get("first_mentions")),
            event=data.get("event"),
            why=data.get("why"),
            signal=data.get("signal"),
            share=data.get("share"),
            negative_reach=data.get("negative_reach"),
            previous_window=data.get("previous_window"),
            total_negative=data.get("total_negative"),
            total_mentions=data.get("total_mentions"),
        )


@dataclass(frozen=True, slots=True)
class MentionPayload:
    """A high-reach complaint during an open incident (kind ``mention``)."""

    brand: str
    incident_id: int | None
    level: str
    at: str
    mention: MentionBrief

    def to_json(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "incident_id": self.incident_id,
            "level": self.level,
            "at": self.at,
            "mention": self.mention.to_json(),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> MentionPayload:
        return cls(
            brand=data["brand"],
            incident_id=data.get("incident_id"),
            level=data["level"],
            at=data["at"],
            mention=MentionBrief.from_json(data["mention"]),
        )


@dataclass(frozen=True, slots=True)
class TestPayload:
    """``brandmon test-alert``'s clearly marked alert (kind ``test``)."""

    __test__ = False  # not a pytest test class, whatever its name

    brand: str
    message: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return {"brand": self.brand, "message": self.message, "at": self.at}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> TestPayload:
        return cls(brand=data["brand"], message=data["message"], at=data["at"])


@dataclass(frozen=True, slots=True)
class UndeliverablePayload:
    """The outbox's notice that ``sink`` refused outbox alert ``alert_id`` for good (kind
    ``undeliverable``); ``level`` and ``incident_id`` are the refused alert's, if it had them."""

    brand: str
    sink: str
    alert_id: int | None
    alert_kind: str
    level: str | None
    incident_id: int | None
    error: str
    at: str

    def to_json(self) -> dict[str, Any]:
        return {
            "brand": self.brand,
            "sink": self.sink,
            "alert_id": self.alert_id,
            "alert_kind": self.alert_kind,
            "level": self.level,
            "incident_id": self.incident_id,
            "error": self.error,
            "at": self.at,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UndeliverablePayload:
        return cls(
            brand=data["brand"],
            sink=data["sink"],
            alert_id=data["alert_id"],
            alert_kind=data["alert_kind"],
            level=data.get("level"),
            incident_id=data.get("incident_id"),
            error=data["error"],
            at=data["at"],
        )


Payload = PagePayload | MentionPayload | TestPayload | UndeliverablePayload

PAYLOADS: dict[str, type[Payload]] = {
    "page": PagePayload,
    "resolved": PagePayload,
    "mention": MentionPayload,
    "test": TestPayload,
    "undeliverable": UndeliverablePayload,
}
"""Alert kind -> the payload it carries."""


def payload_from_json(kind: str, data: Mapping[str, Any]) -> Payload:
    """The payload of an alert of ``kind`` from its stored JSON."""
    return PAYLOADS[kind].from_json(data)


_shown_in = ZoneInfo("UTC")


def show_times_in(zone: str) -> None:
    """Show the times people read in ``zone``, an IANA name (``[display] timezone``).  The
    command line sets it from the config it reads; until then, and by default, times read in
    UTC.  One setting for the process, so that every sink and page says the same time."""
    global _shown_in
    _shown_in = ZoneInfo(zone)


def display_zone() -> ZoneInfo:
    """The zone ``plain_time`` shows times in."""
    return _shown_in


def plain_time(moment: str | datetime, *, day: bool = True) -> str:
    """A time (an ISO string from a payload, or a datetime; naive is UTC) as every page shows
    it: ``2026-11-29 17:25 UTC``, or ``2026-11-29 18:25 CET`` with ``[display] timezone =
    "Europe/Warsaw"``; without ``day``, ``17:25 UTC``."""
    if isinstance(moment, str):
        moment = datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    local = moment.astimezone(_shown_in)
    name = local.tzname() or ""
    if not name.isalpha():  # zones without an abbreviation are named by offset: "+08"
        offset = local.strftime("%z")
        name = f"UTC{offset[:3]}:{offset[3:]}"
    return f"{local:%Y-%m-%d %H:%M} {name}" if day else f"{local:%H:%M} {name}"


def _given(**fields: Any) -> dict[str, Any]:
    """The ``fields`` that are set: a payload's later additions are left out of its JSON
    until they hold something, so the JSON of everything else stays as it always was."""
    return {name: value for name, value in fields.items() if value is not None}


def totals(p: PagePayload) -> str:
    """A resolution's totals in words ("412 negative mentions of 1,030 in all"), or ""."""
    if p.total_negative is None or p.total_mentions is None:
        return ""
    return f"{p.total_negative:,} negative mentions of {p.total_mentions:,} in all"


def lasted(start: str, end: str) -> str:
    """How long from ``start`` to ``end`` (ISO times), as a person says it: "7 h 50 min"."""
    minutes = (
        int((datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()) // 60
    )
    hours, minutes = divmod(max(0, minutes), 60)
    if not hours:
        return f"{minutes} min"
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"
