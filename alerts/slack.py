"""Slack: Block Kit alerts through the Web API, one thread per incident and channel.

An incident's first page in a channel posts a **head**, the incident's live summary (level,
what is happening, the peak, links to its threads in other channels), and the page's evidence as
the first reply.  Each later page adds its evidence as a reply (a crisis is also broadcast to the
channel) and updates every head of the incident, so the thread is the incident's history; the
resolution replies in every thread and marks the heads resolved.  Mentions whose triage category
has a ``[[routes]]`` entry also go to that team's channel when the incident opens, and a crisis
page carries the last 24 hours' chart (best effort).

Channels may be configured by ID (``C…``) or name; names are resolved once through
``conversations.list`` (the Web API's history, update and upload calls take only IDs).

Not posting twice: a ``SlackPost`` row is written before each post and completed with Slack's
``ts``.  Only when a previous attempt got no answer (a crash or a timeout between Slack's "ok"
and the row) is the channel's history searched for the alert's key, carried as message metadata.

Errors: rate limits (429 + Retry-After), Slack's 5xx and network failures are transient
(``SinkError``: the outbox retries, in order).  Refusals that retrying cannot fix (a revoked
token, a channel the bot is not in, a message Slack will never accept) raise
``PermanentSinkError`` with the call, the channel and a hint, so the outbox sets that alert aside
and moves on; a message refused for its blocks or length is first retried once as plain text.
The bot token comes from the environment and is never logged or shown.
"""

from __future__ import annotations

import logging
import os
import re
from datetime import timedelta
from typing import Any, Literal
from urllib.parse import quote

from pydantic import Field, model_validator
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web import SlackResponse
from sqlmodel import col, select

from alerts.base import Alert, PermanentSinkError, SinkError
from alerts.slack_actions import acknowledgement, quiet
from alerts.slack_blocks import (
    Blocks,
    head_blocks,
    loud_blocks,
    notice_blocks,
    page_blocks,
    plain_text,
    route_blocks,
    test_blocks,
)
from monitor.alert import MentionPayload, PagePayload, UndeliverablePayload
from monitor.config import Config, EnvName, HostPort, HttpUrl, RouteConfig, Section
from monitor.model import SlackPost, SlackThread, utcnow
from monitor.storage import Storage

log = logging.getLogger(__name__)

EVENT_TYPE = "brandmon_alert"
RECENT = 50  # messages searched for an alert that may have been posted
CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{6,}")
READS = {"conversations.list", "conversations.history", "conversations.replies"}
NAMES_FRESH = timedelta(minutes=5)  # how long an unknown name is believed not to exist
INVITE = "invite the bot with /invite @your-app in that channel"
HINTS = {
    "invalid_auth": "check that {env} holds the app's bot token (xoxb-…)",
    "not_authed": "check that {env} holds the app's bot token (xoxb-…)",
    "token_revoked": "the token was revoked: reinstall the app and update {env}",
    "account_inactive": "the app was deactivated: reinstall it and update {env}",
    "missing_scope": "add the scope Slack names to the app and reinstall it (README: Slack)",
    "channel_not_found": "check the channel; a private one needs the bot in it: " + INVITE,
    "not_in_channel": INVITE,
    "is_archived": "the channel is archived: unarchive it or configure another",
    "msg_too_long": "the message is longer than Slack accepts",
    "invalid_blocks": "Slack refused the message's blocks",
    "invalid_arguments": "Slack refused the call's arguments",
    "no_text": "the message had no text",
    "restricted_action": "the workspace's settings do not let the app post there",
}
REFORMAT = {"invalid_blocks", "msg_too_long"}  # worth one more try as plain text


class _NoAnswer(SinkError):
    """Slack may or may not have acted on the call (a timeout, a dropped connection, a 5xx)."""


class _Refused(PermanentSinkError):
    def __init__(self, message: str, code: str) -> None:
        super().__init__(message)
        self.code = code


class SlackConfig(Section):
    """Slack through the Web API with a bot token (``chat:write``)."""

    token_env: EnvName = "SLACK_BOT_TOKEN"
    channel: str = Field(min_length=1)
    channels: dict[Literal["watch", "warning", "crisis"], str] = Field(default_factory=dict)
    """Level → channel, where a level should go elsewhere than ``channel``."""
    crisis_mention: str | None = Field(
        default=None, pattern=r"^<!subteam\^[A-Z0-9]+>$|^<@[A-Z0-9]+>$|^<!here>$|^<!channel>$"
    )
    """Who to notify when an incident reaches ``crisis``, e.g. ``"<!subteam^S0123ABC>"``."""
    base_url: HttpUrl = "https://slack.com/api/"
    interactivity: HostPort | None = None
    """``host:port`` where the daemon answers Slack's button clicks (``/slack/actions``, behind
    the HTTPS address set as the app's Interactivity Request URL); no buttons when unset."""
    signing_secret_env: EnvName | None = None
    """The variable holding the app's signing secret, which every click must be signed with."""

    @model_validator(mode="after")
    def _signed(self) -> SlackConfig:
        if self.interactivity and not self.signing_secret_env:
            raise ValueError(
                "interactivity needs signing_secret_env: Slack signs every click with the app's "
                "signing secret, and unsigned clicks are refused"
            )
        return self


SECTION = SlackConfig
"""The class of this sink's ``[alerts.slack]`` section."""


def build(config: Config, storage: Storage) -> SlackSink | None:
    """The Slack sink from ``[alerts.slack]`` (``alerts.sinks``), if there is one."""
    return None if config.alerts.section("slack") is None else SlackSink(config, storage)


class SlackSink:
    name = "slack"

    def __init__(self, config: Config, storage: Storage) -> None:
        self.slack: SlackConfig = config.alerts.section("slack")
        assert self.slack is not None
        self.config = config
        self.routes = config.routes
        self.storage = storage
        self._client: WebClient | None = None
        self._names: dict[str, tuple[str, bool]] = {}  # name -> (ID, the bot is a member)
        self._names_at = utcnow() - NAMES_FRESH
        self._labels: dict[str, str] = {}  # ID -> "#name", for messages

    def wants_chart(self, alert: Alert) -> bool:
        """A crisis page comes with the brand's last 24 hours (posted in its thread)."""
        return alert.kind == "page" and alert.read(PagePayload).level == "crisis"

    def send(self, alert: Alert) -> None:
        if alert.kind == "test":
            channel = self._channel(self.slack.channel)
            self._post(channel, alert.key, test_blocks(alert), None)
        elif alert.kind in ("page", "resolved"):
            self._incident(alert)
        elif alert.kind == "mention":
            self._loud(alert)
        else:  # a notice about another sink: a message of its own, where its page would be
            level = alert.read(UndeliverablePayload).level or "watch"
            channel = self._channel(self.slack.channels.get(level, self.slack.channel))
            self._post(channel, alert.key, notice_blocks(alert), None)

    # -- the Web API ------------------------------------------------------------------------

    def _web(self) -> WebClient:
        if self._client is None:
            token = os.environ.get(self.slack.token_env)
            if not token:
                raise PermanentSinkError(
                    f"environment variable {self.slack.token_env} (the Slack bot token) is not set"
                )
            self._client = WebClient(token=token, base_url=self.slack.base_url, timeout=15)
        return self._client

    def _call(self, method: str, channel: str | None = None, /, **args: Any) -> SlackResponse:
        """One Web API call; failures become ``SinkError``s naming the call and channel."""
        web = self._web()
        try:
            if method in READS:
                return web.api_call(method, http_verb="GET", params=args)
            return web.api_call(method, json=args)
        except SlackApiError as exc:
            raise self._refusal(method, channel, exc.response) from None
        except (SlackClientError, OSError) as exc:
            raise _NoAnswer(f"cannot reach Slack ({method}): {type(exc).__name__}: {exc}") from None

    def _refusal(self, method: str, channel: str | None, response: SlackResponse) -> SinkError:
        where = f" to {self._labels.get(channel, channel)}" if channel else ""
        if response.status_code == 429:
            retry = response.headers.get("Retry-After") or response.headers.get("retry-after")
            return SinkError(
                f"Slack rate limit on {method}{where} (HTTP 429)", retry_after=float(retry or 30)
            )
        code = response.get("error") if isinstance(response.data, dict) else None
        said = f"Slack {method}{where} refused: {code or f'HTTP {response.status_code}'}"
        if response.status_code >= 500:
            return _NoAnswer(said)
        if code in HINTS:
            return _Refused(f"{said} — {HINTS[code].format(env=self.slack.token_env)}", code)
        return SinkError(said)

    def _channel(self, configured: str) -> str:
        """The ID of a configured channel (``C…`` as is, names looked up)."""
        if CHANNEL_ID.fullmatch(configured):
            return configured
        name = configured.removeprefix("#")
        if name not in self._names and utcnow() - self._names_at >= NAMES_FRESH:
            self._list_channels()
        if name not in self._names:
            raise _Refused(
                f"Slack channel #{name} not found: check the name, or for a private channel "
                f"{INVITE} (or configure its ID, C…)",
                "channel_not_found",
            )
        channel, member = self._names[name]
        if not member:
            raise _Refused(f"the bot is not in Slack channel #{name}: {INVITE}", "not_in_channel")
        return channel

    def _list_channels(self) -> None:
        cursor = ""
        names: dict[str, tuple[str, bool]] = {}
        while True:
            page = self._call(
                "conversations.list",
                types="public_channel,private_channel",
                exclude_archived="true",
                limit=1000,
                cursor=cursor,
            )
            for found in page.get("channels") or []:
                names[found["name"]] = (found["id"], bool(found.get("is_member")))
                self._labels[found["id"]] = f"#{found['name']}"
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or ""
            if not cursor:
                break
        self._names, self._names_at = names, utcnow()

    # -- posting once -----------------------------------------------------------------------

    def _post(
        self, channel: str, key: str, blocks: Blocks, thread: str | None, **extra: Any
    ) -> str:
        """Post unless ``key`` was posted already; return the message's ``ts``."""
        with self.storage.session() as session:
            record = session.get(SlackPost, (key, channel))
        if record is not None and record.ts:
            return record.ts
        if record is not None:  # the last attempt got no answer: did Slack take it?
            found = self._find(channel, key, thread)
            if found is not None:
                log.info("slack: alert already posted, not sending it twice key=%s", key)
                self._record(key, channel, found)
                return found
        self._record(key, channel, None)
        try:
            ts = self._chat(channel, key, blocks, thread, **extra)
        except _NoAnswer:
            raise  # keep the record: the next attempt looks before it posts
        except SinkError:
            self._forget(key, channel)
            raise
        self._record(key, channel, ts)
        return ts

    def _chat(
        self, channel: str, key: str, blocks: Blocks, thread: str | None, **extra: Any
    ) -> str:
        message = {
            "channel": channel,
            "text": plain_text(blocks),
            "thread_ts": thread,
            "metadata": {"event_type": EVENT_TYPE, "event_payload": {"key": key}},
            "unfurl_links": False,
            **extra,
        }
        try:
            response = self._call("chat.postMessage", channel, blocks=blocks, **message)
        except _Refused as refused:
            if refused.code not in REFORMAT:
                raise
            log.warning("slack: %s; posting it once more as plain text", refused)
            response = self._call("chat.postMessage", channel, **message)
        return str(response["ts"])

    def _find(self, channel: str, key: str, thread: str | None) -> str | None:
        """The ``ts`` of a recent message in ``channel`` (or ``thread``) posted for ``key``."""
        if thread is None:
            found = self._call(
                "conversations.history",
                channel,
                channel=channel,
                limit=RECENT,
                include_all_metadata="true",
            )
        else:
            found = self._call(
                "conversations.replies",
                channel,
                channel=channel,
                ts=thread,
                limit=RECENT,
                include_all_metadata="true",
            )
        for message in found.get("messages") or []:
            metadata = message.get("metadata") or {}
            if (
                metadata.get("event_type") == EVENT_TYPE
                and (metadata.get("event_payload") or {}).get("key") == key
            ):
                return str(message["ts"])
        return None

    def _record(self, key: str, channel: str, ts: str | None) -> None:
        with self.storage.session() as session:
            session.merge(SlackPost(key=key, channel=channel, ts=ts))
            session.commit()

    def _forget(self, key: str, channel: str) -> None:
        with self.storage.session() as session:
            record = session.get(SlackPost, (key, channel))
            if record is not None:
                session.delete(record)
                session.commit()

    # -- incidents --------------------------------------------------------------------------

    def _incident(self, alert: Alert) -> None:
        payload = alert.read(PagePayload)
        incident = payload.incident_id
        threads = self._threads(incident)
        if alert.kind == "resolved":  # close every thread the incident opened
            targets = threads or {self._channel(self.slack.channel): None}
            for channel, head in targets.items():
                head = head or self._open(alert, channel)
                self._post(channel, alert.key, page_blocks(alert, ""), head)
            self._update_heads(alert)
            self._close_routes(alert)
            return
        level = payload.level
        channel = self._channel(self.slack.channels.get(level, self.slack.channel))
        head = threads.get(channel) or self._open(alert, channel)
        silent, muted = quiet(acknowledgement(self.storage, incident))
        broadcast = {"reply_broadcast": True} if level == "crisis" and not muted else {}
        menus = self.slack.interactivity is not None
        blocks = page_blocks(alert, self._mention(level, silent), menus=menus)
        self._post(channel, alert.key, blocks, head, **broadcast)
        self._update_heads(alert)
        if payload.event in ("opened", "reopened"):
            self._route(alert)
        if level == "crisis":
            self._attach_chart(alert, channel, head)

    def _loud(self, alert: Alert) -> None:
        """A high-reach complaint during an incident: a reply in the incident's thread (in its
        level's channel when it has one there)."""
        payload = alert.read(MentionPayload)
        channel = self._channel(self.slack.channels.get(payload.level, self.slack.channel))
        threads = self._threads(payload.incident_id)
        if channel not in threads and threads:
            channel = next(iter(threads))
        self._post(channel, alert.key, loud_blocks(alert), threads.get(channel))

    def _close_routes(self, alert: Alert) -> None:
        """Tell the team channels the incident sent mentions to that it is over."""
        prefix = f"{alert.brand}:{alert.read(PagePayload).incident_id}:"
        query = select(SlackPost).where(col(SlackPost.key).startswith(prefix, autoescape=True))
        with self.storage.session() as session:
            notices = [p for p in session.exec(query) if ":route:" in p.key and p.ts]
        for notice in notices:
            self._post(notice.channel, alert.key, page_blocks(alert, ""), notice.ts)

    def _open(self, alert: Alert, channel: str) -> str:
        """Post the incident's head in ``channel``; its ``ts`` heads the thread there."""
        ts = self._post(channel, f"{alert.key}:head", self._head(alert), None)
        with self.storage.session() as session:
            session.merge(
                SlackThread(incident_id=alert.read(PagePayload).incident_id, channel=channel, ts=ts)
            )
            session.commit()
        return ts

    def _update_heads(self, alert: Alert) -> None:
        """Every head of the incident shows where it stands now, with links to the others."""
        incident = alert.read(PagePayload).incident_id
        threads = {c: ts for c, ts in self._threads(incident).items() if ts}
        links = {}
        if len(threads) > 1:
            for channel, ts in threads.items():
                found = self._call("chat.getPermalink", channel, channel=channel, message_ts=ts)
                label = self._labels.get(channel, channel).removeprefix("#")
                links[label] = str(found["permalink"])
        for channel, ts in threads.items():
            own = self._labels.get(channel, channel).removeprefix("#")
            blocks = self._head(alert, {n: u for n, u in links.items() if n != own})
            self._call(
                "chat.update",
                channel,
                channel=channel,
                ts=ts,
                text=plain_text(blocks),
                blocks=blocks,
            )

    def _head(self, alert: Alert, links: dict[str, str] | None = None) -> Blocks:
        base = self.config.report.base_url
        return head_blocks(
            alert,
            links,
            ack=acknowledgement(self.storage, alert.read(PagePayload).incident_id),
            buttons=self.slack.interactivity is not None,
            report=f"{base}{quote(alert.brand)}.html" if base else None,
        )

    def _threads(self, incident_id: int) -> dict[str, str | None]:
        """The incident's thread head in each channel it has one in."""
        query = select(SlackThread).where(SlackThread.incident_id == incident_id)
        with self.storage.session() as session:
            return {row.channel: row.ts for row in session.exec(query)}

    def _mention(self, level: str, silent: bool) -> str:
        if level == "crisis" and self.slack.crisis_mention and not silent:
            return f"{self.slack.crisis_mention} "
        return ""

    def _route(self, alert: Alert) -> None:
        """Post each routed triage category's mentions to the team channel that answers it."""
        for route in self.routes:
            mentions = [
                m
                for m in alert.read(PagePayload).top_mentions
                if m.category == route.category and _within(m.priority, route)
            ]
            if mentions:
                key = f"{alert.key}:route:{route.channel}:{route.category}"
                blocks = route_blocks(alert, route.team, route.category, mentions)
                self._post(self._channel(route.channel), key, blocks, None)

    def _attach_chart(self, alert: Alert, channel: str, thread: str) -> None:
        """Upload the chart drawn for ``alert`` (if any) into the incident's thread."""
        if alert.chart is None:
            return
        try:
            self._web().files_upload_v2(
                channel=channel,
                thread_ts=thread,
                content=alert.chart,
                filename=f"{alert.brand}-24h.png",
                title=f"{alert.brand}: the last 24 hours",
            )
        except Exception as exc:  # the chart is a courtesy: the alert itself went out
            log.warning(
                "slack: chart not attached brand=%s: %s: %s", alert.brand, type(exc).__name__, exc
            )


def _within(priority: str | None, route: RouteConfig) -> bool:
    """``min_priority = "P2"`` routes P1 and P2; a mention not yet triaged is routed."""
    return priority is None or priority <= route.min_priority
