"""The console sink: alerts as readable text on standard output (the embedded default)."""

from __future__ import annotations

import sys
from typing import Any, TextIO

from alerts.base import Alert

_MARKS = {"watch": "WATCH", "warning": "WARNING", "crisis": "CRISIS"}


def growth(payload: dict[str, Any]) -> str:
    """``"×3.5 on the previous 15 min; "`` or nothing when there was nothing before."""
    before = payload.get("previous_window") or 0
    if before <= 0:
        return ""
    return f"×{payload['negative'] / before:.1f} on the previous {payload['window_minutes']} min; "


def why(payload: dict[str, Any]) -> str:
    """What made the page, in plain words (payloads queued by older versions lack ``why``)."""
    if "why" in payload:
        return str(payload["why"])
    return (
        f"{payload['negative']:g} negative mentions in the last {payload['window_minutes']} "
        f"min, {payload['expected']:.1f} expected"
    )


def undelivered(payload: dict[str, Any]) -> str:
    """What an ``undeliverable`` notice says: which alert a sink refused for good, why, and how
    to send it again."""
    kind, incident = payload["alert_kind"], payload.get("incident_id")
    level = str(payload.get("level")).upper()
    what = {"page": f"{level} page", "resolved": "resolution"}.get(kind, f"{kind} alert")
    of = "" if incident is None else f" of incident #{incident}"
    number = payload["alert_id"]
    return (
        f"the {what}{of} could not be delivered to {payload['sink']} ({payload['error']}); "
        f"it is kept as outbox alert {number}: fix the cause, then "
        f"`brandmon outbox retry {number}` sends it"
    )


def render(alert: Alert) -> str:
    """The alert as a few lines of plain text."""
    p = alert.payload
    if alert.kind == "test":
        return f"[TEST] brandmon test alert for {alert.brand}: {p['message']}"
    if alert.kind == "undeliverable":
        return f"[UNDELIVERABLE] {alert.brand}: {undelivered(p)}"
    if alert.kind == "mention":
        head = f"[LOUD] {alert.brand}: a high-reach complaint during incident #{p['incident_id']}"
        return f"{head}\n{_line(p['mention']).rstrip()}"
    if alert.kind == "resolved":
        head = f"[RESOLVED] {alert.brand}: incident #{p['incident_id']} is over"
        return f"{head} (peak {p['peak_level']} at {p['peak_at']}, started {p['started_at']})"
    head = (
        f"[{_MARKS.get(p['level'], p['level'].upper())}] {alert.brand}: {why(p)}; "
        f"{growth(p)}incident #{p['incident_id']} since {p['started_at']}"
    )
    lines = [head]
    lines += [_line(m) for m in p.get("top_mentions", [])]
    first = [m for m in p.get("first_mentions", []) if m not in p.get("top_mentions", [])]
    if first:
        lines.append("  where it started:")
        lines += [_line(m) for m in first]
    return "\n".join(line.rstrip() for line in lines)


def _line(m: dict[str, Any]) -> str:
    who = m.get("author") or "unknown"
    text = m["text"] if len(m["text"]) <= 100 else m["text"][:99] + "…"
    return f"  - {who} (reach {m['reach']:.1f}, {m['source']}): {text} {m.get('url') or ''}"


class ConsoleSink:
    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def send(self, alert: Alert) -> None:
        stream = self.stream or sys.stdout
        stream.write(render(alert) + "\n")
        stream.flush()
