"""The push source: an HTTP endpoint other tools POST mentions to.

``POST <path>`` with a JSON body — one mention object, a list of them, or ``{"mentions": [...]}``
— in the format ``brandmon ingest`` reads (``monitor.jsonl``).  The request must be
authenticated with the shared secret from ``secret_env``, either as ``Authorization: Bearer
<secret>`` or as an HMAC signature of the body (``monitor.signing``: ``X-Brandmon-Timestamp``
and ``X-Brandmon-Signature``), both compared in constant time.

A request is taken whole or not at all, and the status tells the sender what to do: 200 with
the counts once every mention is stored; 4xx for a request that will never succeed as sent
(401 auth, 411/413 length, 415 type, 400 not JSON, 422 with every bad field named); 503 with
``Retry-After`` when the database is unavailable, so the sender retries and nothing is lost.
Storing is idempotent, so a retry after a lost response stores nothing twice.

It runs on the stdlib's threading HTTP server in a background thread, like the health endpoint.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler
from typing import Any

from sqlalchemy.exc import OperationalError

from monitor.config import WebhookSource
from monitor.jsonl import MentionError, parse_mention
from monitor.model import RawMention
from monitor.pipeline import PipelineReport
from monitor.serving import BackgroundServer
from monitor.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

log = logging.getLogger(__name__)

MAX_MENTIONS = 1000
READ_TIMEOUT = 10.0
RETRY_AFTER = 30

Ingest = Callable[[list[RawMention]], PipelineReport]
"""Runs pushed mentions through the pipeline (match, score, store) and returns the counts."""


class WebhookServer(BackgroundServer):
    """Serves one ``[[sources]] type = "webhook"`` entry; ``ingest`` stores what arrives."""

    def __init__(self, source: WebhookSource, ingest: Ingest) -> None:
        secret = os.environ.get(source.secret_env, "")
        if not secret:
            raise ValueError(
                f"source {source.name!r}: environment variable {source.secret_env} "
                "(the webhook's shared secret) is not set"
            )
        self.source = source
        handler = _handler(source, secret, ingest)
        super().__init__(source.bind, source.port, handler, f"brandmon-push-{source.name}")

    def start(self) -> None:
        super().start()
        log.info(
            "push endpoint source=%s url=http://%s:%d%s",
            self.source.name,
            *self.address,
            self.source.path,
        )


class _Refused(Exception):
    def __init__(self, status: HTTPStatus, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status = status
        self.extra = extra


def _handler(source: WebhookSource, secret: str, ingest: Ingest) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "brandmon"
        timeout = READ_TIMEOUT  # a client that stops sending mid-body cannot hold a thread

        def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
            try:
                mentions = self._mentions()
                report = ingest(mentions)
            except _Refused as exc:
                log.warning("push refused source=%s status=%d: %s", source.name, exc.status, exc)
                self._reply(exc.status, {"error": str(exc), **exc.extra})
                return
            except OperationalError as exc:
                log.warning(
                    "push deferred source=%s: storage unavailable (%s)",
                    source.name,
                    type(exc.orig).__name__,
                )
                self._reply(
                    HTTPStatus.SERVICE_UNAVAILABLE,
                    {"error": "storage unavailable, retry later"},
                    retry_after=RETRY_AFTER,
                )
                return
            log.info(
                "push ok source=%s received=%d stored=%d duplicates=%d unmatched=%d",
                source.name,
                report.received,
                report.stored,
                report.duplicates,
                report.unmatched,
            )
            self._reply(
                HTTPStatus.OK,
                {
                    "received": report.received,
                    "stored": report.stored,
                    "duplicates": report.duplicates,
                    "unmatched": report.unmatched,
                },
            )

        def do_GET(self) -> None:  # noqa: N802
            self._reply(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "POST mentions as JSON"})

        def _mentions(self) -> list[RawMention]:
            if self.path.split("?", 1)[0] != source.path:
                raise _Refused(HTTPStatus.NOT_FOUND, "not found")
            length = self.headers.get("Content-Length", "")
            if not length.isdigit():
                raise _Refused(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
            if int(length) > source.max_body_bytes:
                self.close_connection = True  # the unread body must not be parsed as a request
                raise _Refused(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"body of {length} bytes is over the limit of {source.max_body_bytes}",
                )
            body = self.rfile.read(int(length))
            if len(body) < int(length):
                raise _Refused(HTTPStatus.BAD_REQUEST, "body shorter than its Content-Length")
            if not self._authorised(body):
                raise _Refused(HTTPStatus.UNAUTHORIZED, "missing or wrong secret or signature")
            kind = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
            if kind != "application/json":
                raise _Refused(
                    HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                    f"send application/json, not {kind or 'no content type'}",
                )
            return _parse(body, source.name)

        def _authorised(self, body: bytes) -> bool:
            scheme, _, token = self.headers.get("Authorization", "").partition(" ")
            if scheme.lower() == "bearer" and token:
                return hmac.compare_digest(token.strip().encode(), secret.encode())
            return verify(
                secret,
                self.headers.get(TIMESTAMP_HEADER),
                self.headers.get(SIGNATURE_HEADER),
                body,
            )

        def _reply(
            self, status: HTTPStatus, body: dict[str, Any], *, retry_after: int | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if status == HTTPStatus.UNAUTHORIZED:
                self.send_header("WWW-Authenticate", 'Bearer realm="brandmon"')
            if retry_after is not None:
                self.send_header("Retry-After", str(retry_after))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # one log line per push is written above, without the client's headers

    return Handler


def _parse(body: bytes, source: str) -> list[RawMention]:
    """The mentions in ``body``, or ``_Refused`` naming every bad one (nothing is half-taken)."""
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _Refused(HTTPStatus.BAD_REQUEST, f"body is not JSON ({exc})") from None
    if isinstance(data, dict) and "mentions" in data:
        data = data["mentions"]
    items = data if isinstance(data, list) else [data]
    if len(items) > MAX_MENTIONS:
        raise _Refused(
            HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            f"{len(items)} mentions in one request; send at most {MAX_MENTIONS}",
        )
    mentions: list[RawMention] = []
    errors: list[str] = []
    for index, item in enumerate(items):
        try:
            mentions.append(parse_mention(item, source=source))
        except MentionError as exc:
            errors.append(f"mentions[{index}]: {exc}")
    if errors:
        raise _Refused(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            f"{len(errors)} of {len(items)} mention(s) are invalid; nothing was stored",
            errors=errors[:50],
        )
    return mentions
