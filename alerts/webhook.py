"""A generic JSON webhook: each alert is POSTed, signed, to a URL of your choosing.

The body is ``{"key", "brand", "kind", "payload"}``.  Receivers verify it with the shared secret
as ``monitor.signing`` describes (``X-Brandmon-Timestamp`` and ``X-Brandmon-Signature:
sha256=<hex HMAC of "<timestamp>." + body>``) and can drop repeats by ``Idempotency-Key``: the
outbox may deliver an alert again after a crash.  Any 2xx is success; a redirect is not
followed (it is a misconfiguration, and would carry the signed body elsewhere).
"""

from __future__ import annotations

import json
import os
import time
from datetime import timedelta

import httpx

from alerts.base import Alert, SinkError
from monitor.config import Config, Duration, EnvName, HttpUrl, Section
from monitor.http import USER_AGENT, parse_retry_after, redact_url
from monitor.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, sign
from monitor.storage import Storage


class WebhookSinkConfig(Section):
    """POST each alert as JSON, signed with HMAC-SHA256 of the body."""

    url: HttpUrl
    secret_env: EnvName = "BRANDMON_ALERT_WEBHOOK_SECRET"
    timeout: Duration = timedelta(seconds=10)


SECTION = WebhookSinkConfig
"""The class of this sink's ``[alerts.webhook]`` section."""


def build(config: Config, storage: Storage) -> WebhookSink | None:
    """The webhook sink from ``[alerts.webhook]`` (``alerts.sinks``), if there is one."""
    section = config.alerts.section("webhook")
    return None if section is None else WebhookSink(section)


class WebhookSink:
    name = "webhook"

    def __init__(self, config: WebhookSinkConfig) -> None:
        self.config = config

    def send(self, alert: Alert) -> None:
        secret = os.environ.get(self.config.secret_env)
        if not secret:
            raise SinkError(f"environment variable {self.config.secret_env} is not set")
        body = json.dumps(
            {
                "key": alert.key,
                "brand": alert.brand,
                "kind": alert.kind,
                "payload": alert.payload.to_json(),
            },
            ensure_ascii=False,
            default=str,
        ).encode()
        timestamp = str(int(time.time()))
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "Idempotency-Key": alert.key,
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret, timestamp, body),
        }
        where = redact_url(self.config.url)
        try:
            response = httpx.post(
                self.config.url,
                content=body,
                headers=headers,
                timeout=self.config.timeout.total_seconds(),
                follow_redirects=False,
            )
        except httpx.TimeoutException:
            raise SinkError(f"{where} did not answer in time") from None
        except httpx.HTTPError as exc:
            raise SinkError(f"cannot reach {where}: {type(exc).__name__}") from None
        if response.is_success:
            return
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
        raise SinkError(f"HTTP {response.status_code} from {where}", retry_after=retry_after)
