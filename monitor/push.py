"""The push source: an HTTP endpoint other tools POST mentions to.

``POST <path>`` with a JSON body — one mention object, a list of them, or ``{"mentions": [...]}``
— in the format ``brandmon ingest`` reads (``monitor.jsonl``).  The request must be
authenticated with the shared secret from ``secret_env``, either as ``Authorization: Bearer
<secret>`` or as an HMAC signature of the body (``monitor.signing``: ``X-Brandmon-Timestamp``
and ``X-Brandmon-Signature``), both compared in constant time.

A request is taken whole or not at all, and the status tells the sender what to do: 200 with
the counts once every mention is stored; 4xx for a request that will never succeed as sent
(401 auth, 411/413 length, 415 type or charset, 400 not JSON — or not valid in its charset,
UTF-8 unless ``Content-Type`` names another, or nested more than ``MAX_DEPTH`` levels deep —,
422 with every bad field named); 503 with ``Retry-After`` when the database is unavailable, so
the sender retries and nothing is lost.  Storing is idempotent, so a retry after a lost response
stores nothing twice.

It is served by ``monitor.serving`` (uvicorn in a background thread, like the health endpoint),
with its limits: a whole request within 15 s (else 408), at most ``MAX_CONNECTIONS`` connections
at once (a request on one more gets 503), bodies over ``max_body_bytes`` refused with 413 before
they are read.  Storing runs in the server's thread pool.
"""

from __future__ import annotations

import codecs
import hmac
import json
import logging
import os
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from sqlalchemy.exc import DataError, IntegrityError, OperationalError

from monitor.config import WebhookSource
from monitor.jsonl import MAX_DEPTH, MentionError, parse_mention, too_deep
from monitor.model import RawMention
from monitor.pipeline import PipelineReport
from monitor.serving import REQUEST_DEADLINE, BackgroundServer, Request, Response
from monitor.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

log = logging.getLogger(__name__)

MAX_MENTIONS = 1000
MAX_CONNECTIONS = 512
"""Connections served at once: a burst of 500 senders is answered, not refused."""
RETRY_AFTER = 30

Ingest = Callable[[list[RawMention]], PipelineReport]
"""Runs pushed mentions through the pipeline (match, score, store) and returns the counts."""


class WebhookServer(BackgroundServer):
    """Serves one ``[[sources]] type = "webhook"`` entry; ``ingest`` stores what arrives.

    ``deadline`` and ``max_connections`` are ``monitor.serving``'s limits; tests shorten them.
    """

    def __init__(
        self,
        source: WebhookSource,
        ingest: Ingest,
        *,
        deadline: float = REQUEST_DEADLINE,
        max_connections: int = MAX_CONNECTIONS,
    ) -> None:
        secret = os.environ.get(source.secret_env, "")
        if not secret:
            raise ValueError(
                f"source {source.name!r}: environment variable {source.secret_env} "
                "(the webhook's shared secret) is not set"
            )
        self.source = source
        super().__init__(
            source.bind,
            source.port,
            _Push(source, secret, ingest),
            f"brandmon-push-{source.name}",
            max_body=source.max_body_bytes,
            deadline=deadline,
            max_connections=max_connections,
        )

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


class _Push:
    """The push endpoint's answers (``monitor.serving.Endpoint``)."""

    def __init__(self, source: WebhookSource, secret: str, ingest: Ingest) -> None:
        self._source = source
        self._secret = secret
        self._ingest = ingest

    def check(self, request: Request) -> Response | None:
        try:
            if request.method != "POST":
                raise _Refused(HTTPStatus.METHOD_NOT_ALLOWED, "POST mentions as JSON")
            if request.path != self._source.path:
                raise _Refused(HTTPStatus.NOT_FOUND, "not found")
            length = request.headers.get("content-length", "")
            if not length.isdigit():
                raise _Refused(HTTPStatus.LENGTH_REQUIRED, "a Content-Length header is required")
            if int(length) > self._source.max_body_bytes:
                raise _Refused(
                    HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                    f"body of {length} bytes is over the limit of {self._source.max_body_bytes}",
                )
        except _Refused as exc:
            return self._refused(exc)
        return None

    def respond(self, request: Request) -> Response:
        name = self._source.name
        try:
            report = self._ingest(self._mentions(request))
        except _Refused as exc:
            return self._refused(exc)
        except OperationalError as exc:
            log.warning(
                "push deferred source=%s: storage unavailable (%s)", name, type(exc.orig).__name__
            )
            return _json(
                HTTPStatus.SERVICE_UNAVAILABLE,
                {"error": "storage unavailable, retry later"},
                {"Retry-After": str(RETRY_AFTER)},
            )
        except (DataError, IntegrityError) as exc:  # a value the database refuses: none stored
            reason = str(exc.orig).splitlines()[0] if exc.orig else type(exc).__name__
            log.warning("push refused source=%s: the database refused a mention: %s", name, reason)
            return self._refused(
                _Refused(
                    HTTPStatus.UNPROCESSABLE_ENTITY,
                    f"the database refused a mention ({reason}); nothing was stored",
                )
            )
        log.info(
            "push ok source=%s received=%d stored=%d duplicates=%d unmatched=%d",
            name,
            report.received,
            report.stored,
            report.duplicates,
            report.unmatched,
        )
        return _json(
            HTTPStatus.OK,
            {
                "received": report.received,
                "stored": report.stored,
                "duplicates": report.duplicates,
                "unmatched": report.unmatched,
            },
        )

    def _mentions(self, request: Request) -> list[RawMention]:
        if not self._authorised(request):
            raise _Refused(HTTPStatus.UNAUTHORIZED, "missing or wrong secret or signature")
        kind, charset = _media_type(request.headers.get("content-type", ""))
        if kind != "application/json":
            raise _Refused(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
                f"send application/json, not {kind or 'no content type'}",
            )
        try:
            codec = codecs.lookup(charset).name
            text = request.body.decode("utf-8-sig" if codec == "utf-8" else codec)
        except LookupError:  # unknown, or not a text encoding (base64)
            raise _Refused(
                HTTPStatus.UNSUPPORTED_MEDIA_TYPE, f"unknown charset {charset!r}"
            ) from None
        except UnicodeError as exc:
            raise _Refused(HTTPStatus.BAD_REQUEST, f"body is not valid {charset} ({exc})") from None
        return _parse(text, self._source.name)

    def _authorised(self, request: Request) -> bool:
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and token:
            return hmac.compare_digest(token.strip().encode(), self._secret.encode())
        return verify(
            self._secret,
            request.headers.get(TIMESTAMP_HEADER.lower()),
            request.headers.get(SIGNATURE_HEADER.lower()),
            request.body,
        )

    def _refused(self, exc: _Refused) -> Response:
        log.warning("push refused source=%s status=%d: %s", self._source.name, exc.status, exc)
        headers = {}
        if exc.status == HTTPStatus.UNAUTHORIZED:
            headers["WWW-Authenticate"] = 'Bearer realm="brandmon"'
        return _json(exc.status, {"error": str(exc), **exc.extra}, headers)


def _json(
    status: HTTPStatus, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Response:
    return Response(status, json.dumps(body).encode(), "application/json", headers or {})


def _media_type(content_type: str) -> tuple[str, str]:
    """The media type of a ``Content-Type`` header, and its charset (UTF-8 unless it says)."""
    kind, *params = content_type.split(";")
    charset = "utf-8"
    for param in params:
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            charset = value.strip().strip('"')
    return kind.strip().lower(), charset


def _parse(text: str, source: str) -> list[RawMention]:
    """The mentions in ``text``, or ``_Refused`` naming every bad one (nothing is half-taken)."""
    if too_deep(text):
        raise _Refused(
            HTTPStatus.BAD_REQUEST, f"body is JSON nested more than {MAX_DEPTH} levels deep"
        )
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
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
