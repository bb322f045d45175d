"""The optional HTTP endpoint for ops: ``/healthz`` and ``/metrics`` (Prometheus text format).

It is served by ``monitor.serving`` (uvicorn in a background thread), bound to 127.0.0.1 by
default, so it answers even while the event loop is busy — and reports the loop as stalled
when it is.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from monitor.serving import BackgroundServer, Request, Response

log = logging.getLogger(__name__)

HealthCheck = Callable[[], tuple[bool, dict[str, Any]]]

_NOT_FOUND = Response(404, b'{"error": "not found"}', "application/json")


class HealthServer(BackgroundServer):
    def __init__(
        self, host: str, port: int, check: HealthCheck, registry: CollectorRegistry
    ) -> None:
        super().__init__(host, port, _Health(check, registry), "brandmon-health")

    def start(self) -> None:
        super().start()
        log.info("health endpoint on http://%s:%d/healthz", *self.address)


class _Health:
    """``monitor.serving.Endpoint`` for ``GET /healthz`` and ``GET /metrics``."""

    def __init__(self, check: HealthCheck, registry: CollectorRegistry) -> None:
        self._check = check
        self._registry = registry

    def check(self, request: Request) -> Response | None:
        if request.path not in ("/healthz", "/metrics"):
            return _NOT_FOUND
        if request.method != "GET":
            return Response(405, b'{"error": "GET only"}', "application/json", {"Allow": "GET"})
        return None

    def respond(self, request: Request) -> Response:
        if request.path == "/metrics":
            return Response(200, generate_latest(self._registry), CONTENT_TYPE_LATEST)
        try:
            ok, report = self._check()
        except Exception as exc:  # a broken check is itself unhealthy
            ok, report = False, {"error": type(exc).__name__}
        body = json.dumps({"ok": ok, **report}, default=str).encode()
        return Response(200 if ok else 503, body, "application/json")
