"""The Graph API (Facebook Pages, Instagram) as the connectors meet it: on a loopback server
(one for the test session, started on first import), answering each path with recorded,
real-shaped replies."""

from __future__ import annotations

import atexit
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from connectors.base import Connector, PollResult
from fakes.sources import poll_once
from monitor.model import Cursor

SERVER = HTTPServer(host="127.0.0.1", port=0)
SERVER.start()
atexit.register(SERVER.stop)
BASE = SERVER.url_for("/v21.0")
JSON_TYPE = "application/json; charset=UTF-8"


@dataclass
class Reply:
    """One answer of the fake: a fixture's bytes (or any body), a status and headers."""

    body: bytes
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)


class FakeGraph:
    """The Graph API: each path (below the version) answers with its queued replies in turn,
    the last one again and again; every request is kept."""

    def __init__(self, fixtures: Path) -> None:
        self.fixtures = fixtures
        self.routes: dict[str, list[Reply]] = {}
        self.requests: list[httpx.Request] = []

    def on(
        self,
        path: str,
        *names: str,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
    ) -> FakeGraph:
        """Queue the fixtures ``names`` (or ``{"data": []}`` when none) for ``path``."""
        bodies = [(self.fixtures / name).read_bytes() for name in names] or [b'{"data": []}']
        self.routes.setdefault(path, []).extend(
            Reply(body, status, headers or {}) for body in bodies
        )
        return self

    def asked(self, path: str) -> list[httpx.Request]:
        return [request for request in self.requests if self._path(request) == path]

    def paths(self) -> list[str]:
        return [self._path(request) for request in self.requests]

    def _path(self, request: httpx.Request) -> str:
        return request.url.path.removeprefix("/v21.0/")

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        replies = self.routes.get(self._path(request))
        if not replies:
            return httpx.Response(404, json={"error": {"message": "no route", "code": 803}})
        reply = replies.pop(0) if len(replies) > 1 else replies[0]
        headers = {"Content-Type": JSON_TYPE, **reply.headers}
        return httpx.Response(reply.status, content=reply.body, headers=headers)

    def run(self, connector: Connector, cursor: Cursor | None = None) -> PollResult:
        """One poll of ``connector`` through the real client, this fake answering."""
        SERVER.clear()
        SERVER.expect_request(re.compile(".*")).respond_with_handler(self._serve)
        return poll_once(connector, cursor)

    def _serve(self, request: Request) -> Response:
        asked = httpx.Request(request.method, request.url, headers=dict(request.headers))
        answer = self.handle(asked)
        return Response(answer.content, status=answer.status_code, headers=dict(answer.headers))
