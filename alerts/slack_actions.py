"""The buttons on an incident's Slack head: "Acknowledge", "Mute 1 h" (and "Open report", a link),
and the "Wrong sentiment?" menu of each top mention in a page.

Slack POSTs each click to the app's Interactivity Request URL; the daemon answers it at
``/slack/actions`` on ``[alerts.slack] interactivity`` (put it behind the HTTPS address Slack
calls).  Every request must carry Slack's signature (``X-Slack-Signature``: ``v0=`` and the
HMAC-SHA256 of ``v0:<timestamp>:<body>`` with the app's signing secret) made within five minutes;
anything else gets 401 and changes nothing.

A click is stored (``IncidentAck``) and the head it was made on is redrawn at once through the
click's ``response_url``.  An acknowledged incident no longer pings ``crisis_mention`` on
escalation; a muted one neither pings nor broadcasts for an hour, and its pages still reach the
thread, so nothing is lost.

A choice in a mention's menu stores the team's label for it (``Storage.label_mention``, by the
Slack user who chose) and answers the user alone (an ephemeral message through the
``response_url``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import re
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qs

import httpx

from alerts.slack_blocks import LABEL, Blocks, state_block
from monitor.model import IncidentAck, to_utc, utcnow
from monitor.serving import BackgroundServer, Request, Response
from monitor.signing import fresh
from monitor.storage import Storage, UnknownMention

log = logging.getLogger(__name__)

PATH = "/slack/actions"
ACKNOWLEDGE = "brandmon_ack"
MUTE = "brandmon_mute"
MUTE_FOR = timedelta(hours=1)
MAX_BODY = 64_000
_USER = re.compile(r"[UW][A-Z0-9]{2,}")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Slack-Signature`` Slack sends for ``body`` at ``timestamp``."""
    signed = b"v0:" + timestamp.encode() + b":" + body
    return "v0=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def verify(
    secret: str, timestamp: str | None, given: str | None, body: bytes, now: float | None = None
) -> bool:
    """Whether ``body`` was signed by Slack with ``secret`` within five minutes of ``now``."""
    if not given or not fresh(timestamp, now):
        return False
    return hmac.compare_digest(signature(secret, timestamp or "", body), given)


def acknowledgement(storage: Storage, incident_id: int) -> IncidentAck | None:
    with storage.session() as session:
        return session.get(IncidentAck, incident_id)


def quiet(ack: IncidentAck | None, now: datetime | None = None) -> tuple[bool, bool]:
    """(no ping, no broadcast) for an incident in state ``ack``."""
    if ack is None:
        return False, False
    until = to_utc(ack.muted_until)
    muted = until is not None and until > (now or utcnow())
    return bool(ack.acknowledged_by) or muted, muted


def record(storage: Storage, incident_id: int, action: str, user: str) -> IncidentAck:
    """Store a click on incident ``incident_id``'s head by Slack user ``user``."""
    now = utcnow()
    with storage.session() as session:
        ack = session.get(IncidentAck, incident_id) or IncidentAck(incident_id=incident_id)
        if action == ACKNOWLEDGE:
            ack.acknowledged_by, ack.acknowledged_at = user, now
        elif action == MUTE:
            ack.muted_until = now + MUTE_FOR
        session.add(ack)
        session.commit()
        session.refresh(ack)
        return ack


def redrawn(blocks: Blocks, ack: IncidentAck) -> Blocks:
    """The head's ``blocks`` with its acknowledgement line replaced by ``ack``'s."""
    kept = [b for b in blocks if b.get("block_id") != "brandmon_state"]
    at = next((i for i, b in enumerate(kept) if b.get("block_id") == "brandmon_actions"), None)
    position = len(kept) if at is None else at
    return kept[:position] + [state_block(ack)] + kept[position:]


def label(storage: Storage, value: str, user: str) -> str:
    """Store the label chosen in a mention's menu (``<mention id>:<sentiment>``) by Slack user
    ``user``; return what to tell them."""
    mention_id, _, sentiment = value.partition(":")
    try:
        storage.label_mention(int(mention_id), sentiment, by=user)
    except UnknownMention as exc:
        log.warning("slack: label by %s not stored: %s", user, exc)
        return f"Not labelled: mention {mention_id} is no longer stored."
    log.info("slack: mention %s labelled %s by %s", mention_id, sentiment, user)
    return f"Mention {mention_id} labelled {sentiment}: `brandmon train` will learn from it."


def handle(storage: Storage, payload: dict[str, Any]) -> None:
    """Record the clicks of one ``block_actions`` payload and redraw the head they were on (or,
    for a label, tell the user it was stored)."""
    user = str((payload.get("user") or {}).get("id") or "")
    if not _USER.fullmatch(user):
        raise ValueError("the click has no Slack user")
    ack = None
    said = []
    for action in payload.get("actions") or []:
        if action.get("action_id") in (ACKNOWLEDGE, MUTE):
            ack = record(storage, int(action["value"]), action["action_id"], user)
            log.info("slack: %s on incident %s by %s", action["action_id"], action["value"], user)
        elif action.get("action_id") == LABEL:
            said.append(label(storage, str(action["selected_option"]["value"]), user))
    blocks = (payload.get("message") or {}).get("blocks")
    url = payload.get("response_url")
    if not url:
        return
    for text in said:  # a courtesy: the label is stored whether or not Slack shows this
        _answer(url, {"response_type": "ephemeral", "replace_original": False, "text": text})
    if ack is not None and blocks:  # the head is redrawn at the next page anyway
        _answer(url, {"replace_original": True, "blocks": redrawn(blocks, ack)})


def _answer(url: str, body: dict[str, Any]) -> None:
    try:
        httpx.post(url, json=body, timeout=5).raise_for_status()
    except httpx.HTTPError as exc:
        log.warning("slack: could not answer a click: %s", exc)


class ActionServer(BackgroundServer):
    """Answers Slack's button clicks at ``PATH`` (served by ``monitor.serving``)."""

    def __init__(self, host: str, port: int, secret: str, storage: Storage) -> None:
        super().__init__(
            host, port, _Actions(secret, storage), "brandmon-slack-actions", max_body=MAX_BODY
        )


class _Actions:
    """``monitor.serving.Endpoint`` for ``POST PATH``: signed clicks only."""

    def __init__(self, secret: str, storage: Storage) -> None:
        self._secret = secret
        self._storage = storage

    def check(self, request: Request) -> Response | None:
        if request.path != PATH:
            return Response(HTTPStatus.NOT_FOUND)
        if request.method != "POST":
            return Response(HTTPStatus.METHOD_NOT_ALLOWED, headers={"Allow": "POST"})
        length = request.headers.get("content-length", "")
        if not length.isdigit() or not 0 < int(length) <= MAX_BODY:
            return Response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        return None

    def respond(self, request: Request) -> Response:
        stamp = request.headers.get("x-slack-request-timestamp")
        given = request.headers.get("x-slack-signature")
        if not verify(self._secret, stamp, given, request.body):
            log.warning("slack: refused an unsigned or stale click from %s", request.client)
            return Response(HTTPStatus.UNAUTHORIZED)
        try:
            payload = json.loads(parse_qs(request.body.decode())["payload"][0])
            if payload.get("type") == "block_actions":
                handle(self._storage, payload)
        except (KeyError, ValueError, TypeError) as exc:
            log.warning("slack: a click could not be read: %s", exc)
            return Response(HTTPStatus.BAD_REQUEST)
        return Response(HTTPStatus.OK)
