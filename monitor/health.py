"""The optional HTTP endpoint for ops: ``/healthz`` and ``/metrics`` (Prometheus text format).

It runs on the stdlib's threading HTTP server in a background thread, bound to 127.0.0.1 by
default, so it answers even while the event loop is busy — and reports the loop as stalled
when it is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.serving import BackgroundServer

log = logging.getLogger(__name__)

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]


class HealthServer(BackgroundServer):
    def __init__(
        self, host: str, port: int, check: HealthCheck, registry: CollectorRegistry
    ) -> None:
        super().__init__(host, port, _handler(check, registry), "brandmon-health")

    def start(self) -> None:
        super().start()
        log.info("health endpoint on http://%s:%d/healthz", *self.address)


def _handler(check: HealthCheck, registry: CollectorRegistry) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "brandmon"

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            if self.path == "/healthz":
                try:
                    ok, report = check()
                except Exception as exc:  # a broken check is itself unhealthy
                    ok, report = False, {"error": type(exc).__name__}
                body = json.dumps({"ok": ok, **report}, default=str).encode()
                self._reply(200 if ok else 503, "application/json", body)
            elif self.path == "/metrics":
                self._reply(200, CONTENT_TYPE_LATEST, generate_latest(registry))
            else:
                self._reply(404, "application/json", b'{"error": "not found"}')

        def _reply(self, status: int, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass  # scrapes every few seconds would drown the log

    return Handler
