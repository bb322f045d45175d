"""Slack: Block Kit alerts through the Web API, one thread per incident.

The first page of an incident is posted to the channel for its level; escalations and the
resolution are posted in that message's thread and the first message is updated
(``chat.update``) to show where the incident stands.  Each message carries its alert's
idempotency key as message metadata, and before posting, the sink looks for that key among the
channel's (or thread's) recent messages: an alert re-sent after a crash between Slack's "ok" and
the outbox's "sent" is recognised and not posted twice.  Mentions whose triage category has a
``[[routes]]`` entry are also posted to that team's channel, when the incident opens, with links
to answer them at the source; and a crisis page carries the last 24 hours' chart (best effort:
a failed upload never holds the alert back).

Slack's rate limits (HTTP 429 + Retry-After) and errors become ``SinkError``: the outbox keeps the
alert and retries it later, in order.  The bot token comes from the environment and is never
logged or shown.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from datetime import timedelta
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from sqlmodel import select

from alerts.base import Alert, SinkError
from alerts.console import growth, why
from monitor.config import Config, RouteConfig
from monitor.model import SlackThread, utcnow
from monitor.storage import Storage

log = logging.getLogger(__name__)

EVENT_TYPE = "brandmon_alert"
MARKS = {
    "watch": ":large_yellow_circle:",
    "warning": ":large_orange_circle:",
    "crisis": ":red_circle:",
}
RECENT = 50  # messages searched for an alert already posted

Blocks = list[dict[str, Any]]


class SlackSink:
    name = "slack"

    def __init__(self, config: Config, storage: Storage) -> None:
        assert config.alerts.slack is not None
        self.slack = config.alerts.slack
        self.config = config
        self.routes = config.routes
        self.storage = storage
        self._client: WebClient | None = None

    def send(self, alert: Alert) -> None:
        try:
            self._send(alert)
        except SlackApiError as exc:
            response = exc.response
            if response.status_code == 429:
                retry = response.headers.get("Retry-After") or response.headers.get("retry-after")
                raise SinkError(
                    "Slack rate limit (HTTP 429)", retry_after=float(retry or 30)
                ) from None
            error = response.get("error") if isinstance(response.data, dict) else None
            raise SinkError(
                f"Slack refused the message: {error or f'HTTP {response.status_code}'}"
            ) from None
        except (SlackClientError, OSError) as exc:
            raise SinkError(f"cannot reach Slack: {type(exc).__name__}: {exc}") from None

    # -- delivery ------------------------------------------------------------------------

    def _web(self) -> WebClient:
        if self._client is None:
            token = os.environ.get(self.slack.token_env)
            if not token:
                raise SinkError(
                    f"environment variable {self.slack.token_env} (the Slack bot token) is not set"
                )
            self._client = WebClient(token=token, base_url=self.slack.base_url, timeout=15)
        return self._client

    def _send(self, alert: Alert) -> None:
        if alert.kind == "test":
            self._post(self.slack.channel, alert.key, blocks_for_test(alert), None)
            return
        payload = alert.payload
        level = payload["level"]
        blocks = page_blocks(alert, self._mention(level))
        if alert.kind == "resolved":  # close every thread the incident opened
            threads = self._threads(payload["incident_id"]) or {self.slack.channel: None}
            for channel, thread in threads.items():
                self._reply(alert, channel, thread, blocks)
            return
        channel = self.slack.channels.get(level, self.slack.channel)
        ts = self._reply(alert, channel, self._threads(payload["incident_id"]).get(channel), blocks)
        if payload.get("event") in ("opened", "reopened"):
            self._route(alert)
        if level == "crisis":
            self._attach_chart(alert, channel, ts)

    def _reply(self, alert: Alert, channel: str, thread: str | None, blocks: Blocks) -> str:
        """Open the incident's thread in ``channel``, or reply in it and update its head."""
        if thread is None:
            ts = self._post(channel, alert.key, blocks, None)
            with self.storage.session() as session:
                incident = alert.payload["incident_id"]
                session.merge(SlackThread(incident_id=incident, channel=channel, ts=ts))
                session.commit()
            return ts
        self._post(channel, alert.key, blocks, thread)
        self._web().chat_update(
            channel=channel, ts=thread, text=fallback(alert), blocks=head_blocks(alert)
        )
        return thread

    def _post(self, channel: str, key: str, blocks: Blocks, thread: str | None) -> str:
        """Post unless a message with ``key`` is already there; return its ``ts``."""
        posted = self._find(channel, key, thread)
        if posted is not None:
            log.info("slack: alert already posted, not sending it twice key=%s", key)
            return posted
        text = blocks_text(blocks)
        response = self._web().chat_postMessage(
            channel=channel,
            text=text,
            blocks=blocks,
            thread_ts=thread,
            metadata={"event_type": EVENT_TYPE, "event_payload": {"key": key}},
            unfurl_links=False,
        )
        return str(response["ts"])

    def _find(self, channel: str, key: str, thread: str | None) -> str | None:
        """The ``ts`` of a recent message in ``channel`` (or ``thread``) posted for ``key``."""
        web = self._web()
        if thread is None:
            found = web.conversations_history(
                channel=channel, limit=RECENT, include_all_metadata=True
            )
        else:
            found = web.conversations_replies(
                channel=channel, ts=thread, limit=RECENT, include_all_metadata=True
            )
        for message in found.get("messages") or []:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == EVENT_TYPE
                and (metadata.get("event_payload") or {}).get("key") == key
            ):
                return str(message["ts"])
        return None

    def _threads(self, incident_id: int) -> dict[str, str | None]:
        """The incident's thread in each channel it has one in."""
        query = select(SlackThread).where(SlackThread.incident_id == incident_id)
        with self.storage.session() as session:
            return {row.channel: row.ts for row in session.exec(query)}

    def _mention(self, level: str) -> str:
        if level == "crisis" and self.slack.crisis_mention:
            return f"{self.slack.crisis_mention} "
        return ""

    def _route(self, alert: Alert) -> None:
        """Post each routed triage category's mentions to the team channel that answers it."""
        for route in self.routes:
            mentions = [
                m
                for m in alert.payload.get("top_mentions", [])
                if m.get("category") == route.category and _within(m.get("priority"), route)
            ]
            if mentions:
                key = f"{alert.key}:route:{route.channel}:{route.category}"
                self._post(route.channel, key, route_blocks(alert, route, mentions), None)

    def _attach_chart(self, alert: Alert, channel: str, thread: str) -> None:
        from monitor.report import build_report, chart_png

        try:
            now = utcnow()
            report = build_report(
                self.config, self.storage, alert.brand, now - timedelta(hours=24), now
            )
            self._web().files_upload_v2(
                channel=channel,
                thread_ts=thread,
                content=chart_png(report),
                filename=f"{alert.brand}-24h.png",
                title=f"{alert.brand}: the last 24 hours",
            )
        except Exception as exc:  # the chart is a courtesy: the alert itself went out
            log.warning("slack: chart not attached brand=%s: %s", alert.brand, type(exc).__name__)


def _within(priority: str | None, route: RouteConfig) -> bool:
    """``min_priority = "P2"`` routes P1 and P2; a mention not yet triaged is routed."""
    return priority is None or priority <= route.min_priority


# -- messages ------------------------------------------------------------------------------


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _excerpt(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def fallback(alert: Alert) -> str:
    """The plain text shown in notifications and where blocks cannot be."""
    p = alert.payload
    if alert.kind == "resolved":
        return f"RESOLVED: {alert.brand} incident #{p['incident_id']} is over"
    return f"{p['level'].upper()}: {alert.brand}, {p['negative']:g} negative mentions"


def head_blocks(alert: Alert) -> Blocks:
    """The incident's first message as it should read now (``chat.update``)."""
    p = alert.payload
    if alert.kind == "resolved":
        title = f":white_check_mark: RESOLVED (peak {p['peak_level'].upper()}) — {alert.brand}"
    else:
        title = f"{MARKS.get(p['level'], '')} {p['level'].upper()} — {alert.brand}"
    return [
        {"type": "header", "text": {"type": "plain_text", "text": title[:150]}},
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Incident #{p['incident_id']} since {p['started_at'][:16]} UTC · "
                    f"peak {p['peak_level']} at {p['peak_at'][:16]} UTC · updates in the thread",
                }
            ],
        },
    ]


def page_blocks(alert: Alert, mention: str) -> Blocks:
    """A page or a resolution as Block Kit blocks."""
    p = alert.payload
    if alert.kind == "resolved":
        text = (
            f"*{_escape(alert.brand)}: incident #{p['incident_id']} is over.* It peaked at "
            f"*{p['peak_level']}* at {p['peak_at'][:16]} UTC; "
            f"it started {p['started_at'][:16]} UTC."
        )
        return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    level = p["level"]
    title = f"{MARKS.get(level, '')} {level.upper()} — {alert.brand}"
    summary = f"{mention}{_escape(why(p))}. {_escape(growth(p))}".strip()
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": title[:150]},
        },
        {"type": "section", "text": {"type": "mrkdwn", "text": summary}},
    ]
    top = p.get("top_mentions") or []
    if top:
        lines = [_mention_line(m) for m in top]
        blocks.append(
            {
                "type": "section",
                "text": {"type": "mrkdwn", "text": "*Most influential*\n" + "\n".join(lines)},
            }
        )
        first = [m for m in p.get("first_mentions") or [] if m not in top]
        if first:
            lines = [_mention_line(m) for m in first]
            blocks.append(
                {
                    "type": "section",
                    "text": {"type": "mrkdwn", "text": "*Where it started*\n" + "\n".join(lines)},
                }
            )
        categories = Counter(m["category"] for m in top if m.get("category"))
        if categories:
            breakdown = ", ".join(
                f"{c.replace('_', ' ')} ×{n}" for c, n in categories.most_common()
            )
            blocks.append(_context(f"Triage: {breakdown}"))
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Incident #{p['incident_id']} since {p['started_at'][:16]} UTC",
                }
            ],
        }
    )
    return blocks


def _mention_line(m: dict[str, Any]) -> str:
    text = _escape(_excerpt(m["text"]))
    linked = f"<{m['url']}|{text}>" if m.get("url") else text
    who = _escape(m.get("author") or "unknown")
    return f"• {linked} — {who} (reach {m['reach']:.0f}, {_escape(m['source'])})"


def route_blocks(alert: Alert, route: RouteConfig, mentions: list[dict[str, Any]]) -> Blocks:
    team = f"{route.team}: " if route.team else ""
    head = (
        f"{team}{len(mentions)} {route.category.replace('_', ' ')} mention(s) of "
        f"*{_escape(alert.brand)}* need an answer — reply where the customer wrote"
    )
    lines = [_mention_line(m) for m in mentions]
    return [
        {"type": "section", "text": {"type": "mrkdwn", "text": head}},
        {"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}},
    ]


def blocks_for_test(alert: Alert) -> Blocks:
    brand = _escape(alert.brand)
    text = f":test_tube: *[TEST] brandmon test alert for {brand}*: {alert.payload['message']}"
    return [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": text}]}


def blocks_text(blocks: Blocks) -> str:
    """The blocks' text, for notifications and clients without Block Kit."""
    parts = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        for element in block.get("elements", []):
            parts.append(element.get("text", ""))
    return "\n".join(p for p in parts if p)[:3000]
