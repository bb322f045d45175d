"""Block Kit messages for Slack, built within Slack's documented limits.

Every message goes through ``fit`` before it is sent: section text at most 3,000 characters,
headers 150, at most 50 blocks and 10 context elements (longer text ends in "…", extra blocks are
dropped).  Lists of mentions are built line by line so that a cut never splits a link, and a line
whose link does not fit keeps its text without the link.

User text cannot ping anyone: ``&``, ``<`` and ``>`` are escaped in every text, and a link is
kept only when it is a plain http(s) URL once its ``&`` are escaped (a URL holding ``<``, ``>``,
``|``, spaces or control characters is dropped, so ``<!channel>`` smuggled in a link stays text).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from alerts.base import Alert
from alerts.console import growth, undelivered, why
from monitor.alert import (
    MentionBrief,
    MentionPayload,
    PagePayload,
    TestPayload,
    UndeliverablePayload,
    plain_time,
    totals,
)
from monitor.model import IncidentAck, to_utc, utcnow
from monitor.vocabulary import SENTIMENTS

MARKS = {
    "watch": ":large_yellow_circle:",
    "warning": ":large_orange_circle:",
    "crisis": ":red_circle:",
}
SECTION_CHARS = 3000
HEADER_CHARS = 150
MAX_BLOCKS = 50
MAX_ELEMENTS = 10
TEXT_CHARS = 3000  # the notification text (Slack allows 40,000; nobody reads past this)
URL_CHARS = 3000
_SAFE_URL = re.compile(r"https?://[^\s<>|\x00-\x1f\x7f]+")

Blocks = list[dict[str, Any]]


def escape(text: str) -> str:
    """Text as Slack mrkdwn shows it literally (no links, no mentions)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def link(url: str | None, label: str) -> str:
    """``<url|label>`` for a safe URL, else the escaped label alone."""
    label = escape(label)
    if not url or len(url) > URL_CHARS or not _SAFE_URL.fullmatch(url):
        return label
    return f"<{url.replace('&', '&amp;')}|{label}>"


def excerpt(text: str, limit: int = 140) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def header(text: str) -> dict[str, Any]:
    return {"type": "header", "text": {"type": "plain_text", "text": _cut(text, HEADER_CHARS)}}


def section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": _cut(text, SECTION_CHARS)}}


def context(*texts: str) -> dict[str, Any]:
    elements = [{"type": "mrkdwn", "text": _cut(t, SECTION_CHARS)} for t in texts]
    return {"type": "context", "elements": elements[:MAX_ELEMENTS]}


def listing(title: str, lines: list[tuple[str, str]]) -> dict[str, Any]:
    """A section of ``title`` and one line per (linked, plain) pair, as many as fit."""
    text = title
    for linked, plain in lines:
        for candidate in (linked, plain):
            line = f"\n{candidate}" if text else candidate
            if len(text) + len(line) <= SECTION_CHARS:
                text += line
                break
        else:
            break
    return section(text)


def fit(blocks: Blocks) -> Blocks:
    """``blocks`` within Slack's limits on their number and their texts."""
    fitted = []
    for block in blocks[:MAX_BLOCKS]:
        if block["type"] == "header":
            block = header(block["text"]["text"])
        elif block["type"] == "section":
            block = {**block, **section(block["text"]["text"])}  # keeps an accessory
        elif block["type"] == "context":
            block = {**block, **context(*(e["text"] for e in block["elements"]))}
        fitted.append(block)
    return fitted


def plain_text(blocks: Blocks) -> str:
    """The blocks' text, for notifications and clients without Block Kit."""
    parts = []
    for block in blocks:
        if "text" in block:
            parts.append(block["text"]["text"])
        if block["type"] == "context":
            parts += [element["text"] for element in block["elements"]]
    return _cut("\n".join(p for p in parts if p), TEXT_CHARS)


def mention_line(m: MentionBrief) -> tuple[str, str]:
    """One mention, with and without its link."""
    text = excerpt(m.text or "")
    who = escape(m.author or "unknown")
    tail = f" — {who} (reach {m.reach or 0:.0f}, {escape(str(m.source))})"
    elsewhere = [link(url, urlsplit(url).hostname or "here") for url in m.also]
    also = f" · also {', '.join(elsewhere)}" if elsewhere else ""
    return f"• {link(m.url, text)}{tail}{also}", f"• {escape(text)}{tail}"


LABEL = "brandmon_label"
LABEL_HINT = (
    "Wrong sentiment? Pick the right one in a mention's ⋯ menu: `brandmon train` learns it."
)


def label_menu(mention_id: int) -> dict[str, Any]:
    """A mention's "Wrong sentiment?" menu: one option per sentiment (an overflow menu takes 2
    to 5), each valued ``<mention id>:<sentiment>`` (their clicks are answered by
    ``alerts.slack_actions``)."""
    options = [
        {"text": {"type": "plain_text", "text": f"Sentiment: {s}"}, "value": f"{mention_id}:{s}"}
        for s in SENTIMENTS
    ]
    return {"type": "overflow", "action_id": LABEL, "options": options}


def labelled_listing(title: str, mentions: Sequence[MentionBrief]) -> Blocks:
    """``title`` and a section per mention with its ``label_menu`` (a mention without an id,
    from an alert queued before ids were carried, has no menu)."""
    blocks = [section(title)]
    for m in mentions:
        linked, plain = mention_line(m)
        block = section(linked if len(linked) <= SECTION_CHARS else plain)
        if isinstance(m.id, int):
            block["accessory"] = label_menu(m.id)
        blocks.append(block)
    blocks.append(context(LABEL_HINT))
    return blocks


def title(alert: Alert) -> str:
    p = alert.read(PagePayload)
    if alert.kind == "resolved":
        return f":white_check_mark: RESOLVED (peak {p.peak_level.upper()}) — {alert.brand}"
    return f"{MARKS.get(p.level, '')} {p.level.upper()} — {alert.brand}"


def state_block(ack: IncidentAck | None) -> dict[str, Any]:
    """Who acknowledged the incident, and whether it is muted."""
    parts = []
    if ack is not None and ack.acknowledged_by:
        at = to_utc(ack.acknowledged_at)
        when = f" at {plain_time(at, day=False)}" if at else ""
        parts.append(f"Acknowledged by <@{ack.acknowledged_by}>{when}")
    muted = to_utc(ack.muted_until) if ack is not None else None
    if muted is not None and muted > utcnow():
        parts.append(f"muted until {plain_time(muted, day=False)}")
    block = context(" · ".join(parts) or "Not acknowledged yet")
    return {**block, "block_id": "brandmon_state"}


def actions_block(incident_id: int, report: str | None) -> dict[str, Any]:
    """The head's buttons (their clicks are answered by ``alerts.slack_actions``)."""
    value = str(incident_id)
    buttons: list[dict[str, Any]] = [
        _button("Acknowledge", action_id="brandmon_ack", value=value, style="primary"),
        _button("Mute 1 h", action_id="brandmon_mute", value=value),
    ]
    if report and len(report) <= URL_CHARS:
        buttons.append(_button("Open report", action_id="brandmon_report", url=report))
    return {"type": "actions", "block_id": "brandmon_actions", "elements": buttons}


def _button(label: str, **fields: str) -> dict[str, Any]:
    return {"type": "button", "text": {"type": "plain_text", "text": label}, **fields}


def head_blocks(
    alert: Alert,
    links: dict[str, str] | None = None,
    *,
    ack: IncidentAck | None = None,
    buttons: bool = False,
    report: str | None = None,
) -> Blocks:
    """The incident's thread head: where the incident stands now (kept up to date), with its
    acknowledgement and, when Slack's clicks reach the daemon, its buttons."""
    p = alert.read(PagePayload)
    facts = [
        f"Incident #{p.incident_id} since {plain_time(p.started_at)}",
        f"peak *{p.peak_level}* at {plain_time(p.peak_at)}",
    ]
    if alert.kind != "resolved":
        facts.append(f"now: {escape(why(p))}")
        if p.share is not None:
            facts.append(f"{p.share:.0%} of the mentions negative")
        if p.negative_reach:
            facts.append(f"negative reach {p.negative_reach:.0f}")
    blocks = [header(title(alert)), section(" · ".join(facts))]
    if links:
        others = " · ".join(link(url, f"#{name}") for name, url in sorted(links.items()))
        blocks.append(context(f"Also in {others}"))
    blocks.append(context("Each page's evidence is in the thread."))
    if buttons:
        blocks.append(state_block(ack))
        if alert.kind != "resolved":
            assert p.incident_id is not None
            blocks.append(actions_block(p.incident_id, report))
    return fit(blocks)


def page_blocks(alert: Alert, mention: str, *, menus: bool = False) -> Blocks:
    """A page's evidence, or the resolution, as a thread reply; with ``menus`` (when Slack's
    clicks reach the daemon) each top mention has a "Wrong sentiment?" menu."""
    p = alert.read(PagePayload)
    if alert.kind == "resolved":
        text = (
            f"*{escape(alert.brand)}: incident #{p.incident_id} is over.* It peaked at "
            f"*{p.peak_level}* at {plain_time(p.peak_at)}; "
            f"it started {plain_time(p.started_at)}." + (f" {totals(p)}." if totals(p) else "")
        )
        return fit([section(text)])
    summary = f"{mention}{escape(why(p))}. {escape(growth(p))}".strip()
    blocks = [header(title(alert)), section(summary)]
    top = p.top_mentions
    if top and menus:
        blocks += labelled_listing("*Most influential*", top)
    elif top:
        blocks.append(listing("*Most influential*", [mention_line(m) for m in top]))
    if top:
        first = [m for m in p.first_mentions if m not in top]
        if first:
            blocks.append(listing("*Where it started*", [mention_line(m) for m in first]))
        categories = Counter(m.category for m in top if m.category)
        if categories:
            breakdown = ", ".join(
                f"{c.replace('_', ' ')} ×{n}" for c, n in categories.most_common()
            )
            blocks.append(context(f"Triage: {breakdown}"))
    blocks.append(context(f"Incident #{p.incident_id} since {plain_time(p.started_at)}"))
    return fit(blocks)


def loud_blocks(alert: Alert) -> Blocks:
    """A high-reach complaint during an incident, for the incident's thread."""
    p = alert.read(MentionPayload)
    linked, plain = mention_line(p.mention)
    head = f":loudspeaker: *High-reach complaint* during incident #{p.incident_id}"
    return fit([listing(head, [(linked, plain)])])


def route_blocks(
    alert: Alert, team: str | None, category: str, mentions: Sequence[MentionBrief]
) -> Blocks:
    prefix = f"{escape(team)}: " if team else ""
    head = (
        f"{prefix}{len(mentions)} {category.replace('_', ' ')} mention(s) of "
        f"*{escape(alert.brand)}* need an answer — reply where the customer wrote"
    )
    return fit([section(head), listing("", [mention_line(m) for m in mentions])])


def test_blocks(alert: Alert) -> Blocks:
    brand = escape(alert.brand)
    text = (
        f":test_tube: *[TEST] brandmon test alert for {brand}*: "
        f"{escape(alert.read(TestPayload).message)}"
    )
    return fit([section(text)])


def notice_blocks(alert: Alert) -> Blocks:
    """An operator notice: another sink refused an alert for good (``undeliverable``)."""
    return fit(
        [
            header(f":warning: UNDELIVERABLE — {alert.brand}"),
            section(escape(undelivered(alert.read(UndeliverablePayload)))),
        ]
    )
