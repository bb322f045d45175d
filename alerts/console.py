"""The console sink: alerts as readable text on standard output (the embedded default)."""

from __future__ import annotations

import sys
from typing import TextIO

from alerts.base import Alert
from monitor.alert import (
    MentionBrief,
    MentionPayload,
    PagePayload,
    TestPayload,
    UndeliverablePayload,
    lasted,
    plain_time,
    totals,
)
from monitor.config import Config
from monitor.storage import Storage

_MARKS = {"watch": "WATCH", "warning": "WARNING", "crisis": "CRISIS"}


def growth(payload: PagePayload) -> str:
    """``"×3.5 on the previous 15 min; "`` or nothing when there was nothing before."""
    before = payload.previous_window or 0
    if before <= 0:
        return ""
    return f"×{payload.negative / before:.1f} on the previous {payload.window_minutes} min; "


def why(payload: PagePayload) -> str:
    """What made the page, in plain words (payloads queued by older versions lack ``why``)."""
    if payload.why is not None:
        return payload.why
    return (
        f"{payload.negative:g} negative mentions in the last {payload.window_minutes} "
        f"min, {payload.expected:.1f} expected"
    )


def undelivered(payload: UndeliverablePayload) -> str:
    """What an ``undeliverable`` notice says: which alert a sink refused for good, why, and how
    to send it again."""
    kind, incident = payload.alert_kind, payload.incident_id
    level = str(payload.level).upper()
    what = {"page": f"{level} page", "resolved": "resolution"}.get(kind, f"{kind} alert")
    of = "" if incident is None else f" of incident #{incident}"
    number = payload.alert_id
    return (
        f"the {what}{of} could not be delivered to {payload.sink} ({payload.error}); "
        f"it is kept as outbox alert {number}: fix the cause, then "
        f"`brandmon outbox retry {number}` sends it"
    )


def render(alert: Alert) -> str:
    """The alert as a few lines of plain text."""
    p = alert.payload
    if isinstance(p, TestPayload):
        return f"[TEST] brandmon test alert for {alert.brand}: {p.message}"
    if isinstance(p, UndeliverablePayload):
        return f"[UNDELIVERABLE] {alert.brand}: {undelivered(p)}"
    if isinstance(p, MentionPayload):
        head = f"[LOUD] {alert.brand}: a high-reach complaint during incident #{p.incident_id}"
        return f"{head}\n{_line(p.mention).rstrip()}"
    if alert.kind == "resolved":
        head = f"[RESOLVED] {alert.brand}: incident #{p.incident_id} is over after "
        counted = f": {totals(p)}" if totals(p) else ""
        return (
            f"{head}{lasted(p.started_at, p.at)}{counted} (started {plain_time(p.started_at)}, "
            f"peak {p.peak_level} at {plain_time(p.peak_at)})"
        )
    head = (
        f"[{_MARKS.get(p.level, p.level.upper())}] {alert.brand}: {why(p)}; "
        f"{growth(p)}incident #{p.incident_id} since {plain_time(p.started_at)}"
    )
    lines = [head]
    lines += [_line(m) for m in p.top_mentions]
    first = [m for m in p.first_mentions if m not in p.top_mentions]
    if first:
        lines.append("  where it started:")
        lines += [_line(m) for m in first]
    return "\n".join(line.rstrip() for line in lines)


def _line(m: MentionBrief) -> str:
    who = m.author or "unknown"
    text = m.text if len(m.text) <= 100 else m.text[:99] + "…"
    also = f" (also {', '.join(m.also)})" if m.also else ""
    return f"  - {who} (reach {m.reach:.1f}, {m.source}): {text} {m.url or ''}{also}"


class ConsoleSink:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, alert: Alert) -> None:
        stream = self.stream or sys.stdout
        stream.write(render(alert) + "\n")
        stream.flush()


def build(config: Config, storage: Storage) -> ConsoleSink:
    """The console sink (``alerts.sinks``): it needs no config section."""
    return ConsoleSink()
